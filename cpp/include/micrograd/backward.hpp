// micrograd/backward.hpp: reverse-mode sweep from a root, with no recursion.
#pragma once

#include <cstdint>
#include <vector>

#include "ops.hpp"

namespace micrograd {
namespace detail {

// Scratch buffers reused by every backward() on this thread, so a training loop does
// not allocate per step once they have grown to the size of its graph.
template <class T>
struct BackwardScratch {
    std::vector<std::uintptr_t> stack;  // node pointers; low bit set = "finish this node"
    std::vector<Node<T>*> order;        // interior nodes, inputs before consumers
};

template <class T>
BackwardScratch<T>& backward_scratch() {
    thread_local BackwardScratch<T> scratch;
    return scratch;
}

// Clears the visit marks of every node touched by a topological sort, also when the
// sort is cut short by an exception (out of memory while growing the buffers).
template <class T>
struct VisitMarksGuard {
    BackwardScratch<T>& s;
    ~VisitMarksGuard() {
        for (Node<T>* n : s.order) n->flags &= ~flag_visited;
        for (std::uintptr_t e : s.stack)
            reinterpret_cast<Node<T>*>(e & ~std::uintptr_t{1})->flags &= ~flag_visited;
        s.order.clear();
        s.stack.clear();
    }
};

// Fills s.order with the interior (non-leaf) nodes reachable from root, each after all of
// its inputs: an iterative depth-first post-order. A node is marked when it is expanded,
// not when it is pushed, and is appended only when its "finish" entry is popped, which
// comes after every input pushed above it has been finished. Leaves are never pushed:
// they have nothing to propagate, so they need no place in the order and no mark.
template <class T>
void topological_order(Node<T>* root, BackwardScratch<T>& s) {
    auto push = [&s](Node<T>* n) {
        if (n->op != Op::leaf && !(n->flags & flag_visited))
            s.stack.push_back(reinterpret_cast<std::uintptr_t>(n));
    };
    push(root);
    while (!s.stack.empty()) {
        const std::uintptr_t entry = s.stack.back();
        auto* n = reinterpret_cast<Node<T>*>(entry & ~std::uintptr_t{1});
        if (entry & 1) {
            s.stack.pop_back();
            s.order.push_back(n);
            continue;
        }
        if (n->flags & flag_visited) {  // pushed twice, expanded already
            s.stack.pop_back();
            continue;
        }
        n->flags |= flag_visited;
        s.stack.back() = entry | 1;
        push(n->a);
        if (is_binary(n->op)) push(n->b);
    }
}

// Adds n's gradient, times its local derivatives, into its inputs.
template <class T>
void propagate(Node<T>& n) noexcept {
    Node<T>& x = *n.a;
    if (is_binary(n.op)) {
        Node<T>& y = *n.b;
        const Partials<T> p = partials(n.op, x.data, y.data, n.data);
        x.grad += p.dx * n.grad;
        y.grad += p.dy * n.grad;
    } else {
        const T second = n.op == Op::pow_const ? n.k : T(0);
        x.grad += partials(n.op, x.data, second, n.data).dx * n.grad;
    }
}

}  // namespace detail

// micrograd's backward(): sets root's grad to 1, then adds into the grad of every node
// reachable from root its contribution, in reverse topological order. Grads are not
// zeroed first, so calling it twice accumulates exactly as micrograd does.
template <class T>
void backward(Node<T>* root) {
    auto& s = detail::backward_scratch<T>();
    detail::VisitMarksGuard<T> guard{s};
    detail::topological_order(root, s);
    root->grad = T(1);
    for (auto it = s.order.rbegin(); it != s.order.rend(); ++it) detail::propagate(**it);
}

}  // namespace micrograd
