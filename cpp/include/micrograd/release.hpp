// micrograd/release.hpp: dropping references: a node dies with its last one, and with it
// every input that no one else holds.
#pragma once

#include "fused_node.hpp"

namespace micrograd {
namespace detail {

// Returns a dead node's storage, to the arena or, with its Fused part, to the block pool.
template <class T>
void free_storage(Context<T>& ctx, Node<T>* dead) noexcept {
    if (dead->flags & flag_in_block) return free_block(ctx, dead, fused_part(*dead).n);
    if (dead->in_side_table()) ctx.hooks.on_free(dead);
    ctx.arena.deallocate(dead);
}

// Drops one reference; frees the node when it was the last, and with it every input
// that no one else holds, with a work list instead of recursion: freeing a chain of any
// length uses constant stack.
template <class T>
void release(Node<T>* n) noexcept {
    if (--n->refs != 0) return;
    Context<T>& ctx = context<T>();
    auto& work = ctx.work;
    // A leaf that dies is freed at once; the next node to free is the first other input
    // that died with `dead`, and the rest wait on `work`. So a chain is freed in order,
    // from its end, without touching `work`, and the free list hands the slots out again
    // in the order they were first used.
    Node<T>* next = n;
    auto drop = [&ctx, &work, &next](Node<T>* input) {
        if (input == nullptr || --input->refs != 0) return;
        if (input->op == Op::leaf) {
            free_storage(ctx, input);
        } else if (next == nullptr) {
            next = input;
        } else {
            work.push_back(input);  // may only throw when out of memory: terminates,
        }                           // as noexcept says
    };
    while (next != nullptr || !work.empty()) {
        Node<T>* dead = next;
        if (dead == nullptr) {
            dead = work.back();
            work.pop_back();
        }
        next = nullptr;
        drop(dead->a);
        if (is_binary(dead->op)) drop(dead->b);
        if (is_fused(dead->op))
            free_neuron(ctx, dead, drop);  // its rows' nodes too
        else
            free_storage(ctx, dead);
    }
}

// Drops one reference to a row; frees it when it was the last, releasing its nodes.
template <class T>
void release(Row<T>* r) noexcept {
    drop_row(r, [](Node<T>* n) { release(n); });
}

}  // namespace detail
}  // namespace micrograd
