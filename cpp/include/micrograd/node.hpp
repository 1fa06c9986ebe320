// micrograd/node.hpp: Node<T>, one vertex of a graph, and its intrusive lifetime.
#pragma once

#include <cstdint>

#include "arena.hpp"

namespace micrograd {

// The operation that produced a node. ops.hpp gives each one its value and partials.
enum class Op : std::uint8_t {
    leaf,       // a value made by the user or from a constant: no inputs
    add,        // x + y
    sub,        // x - y
    mul,        // x * y
    div,        // x / y
    neg,        // -x
    pow_const,  // x ** k, k a constant stored in the node
    pow,        // x ** y, both values in the graph
    relu,
    tanh,
    sigmoid,
    exp,
    log,
    softplus,  // log(1 + exp(x)), computed without overflow
};

namespace detail {
// Node::flags bits.
inline constexpr std::uint8_t flag_visited = 1;       // reached by the current backward()
inline constexpr std::uint8_t flag_int_exponent = 2;  // pow_const: k was given as an integer
}  // namespace detail

// One scalar in a graph: 48 bytes for double, 40 for float.
// Inputs are owned references: a node keeps its inputs alive, and handles keep nodes
// alive; the count in `refs` covers both.
template <class T>
struct Node {
    T data;
    T grad;
    Node* a;  // first input; nullptr for a leaf
    union {
        Node* b;  // second input of a binary op
        T k;      // the exponent of pow_const
    };
    void* user;  // opaque to the core; the Python module keeps the node's wrapper here
    std::uint32_t refs;
    Op op;
    std::uint8_t flags;
};

namespace detail {

// One arena per scalar type, shared by all graphs of that type. It is deliberately never
// destroyed: handles held by other static objects or by an interpreter shutting down may
// release nodes after static destructors have run.
template <class T>
Arena<Node<T>>& arena() {
    static auto* instance = new Arena<Node<T>>();
    return *instance;
}

inline constexpr bool is_binary(Op op) noexcept {
    return op == Op::add || op == Op::sub || op == Op::mul || op == Op::div || op == Op::pow;
}

template <class T>
Node<T>* new_node(Op op, T data, Node<T>* a, Node<T>* b) {
    auto* n = static_cast<Node<T>*>(arena<T>().allocate());
    n->data = data;
    n->grad = T(0);
    n->a = a;
    n->b = b;
    n->user = nullptr;
    n->refs = 0;
    n->op = op;
    n->flags = 0;
    if (a != nullptr) ++a->refs;
    if (b != nullptr) ++b->refs;
    return n;
}

template <class T>
void retain(Node<T>* n) noexcept {
    ++n->refs;
}

// Drops one reference; frees the node when it was the last, and with it every input
// that no one else holds. Dead nodes are chained through their `user` slot into a work
// list, so freeing a chain of any length uses constant stack and allocates nothing.
template <class T>
void release(Node<T>* n) noexcept {
    if (--n->refs != 0) return;
    n->user = nullptr;
    Node<T>* dead = n;
    while (dead != nullptr) {
        Node<T>* next = static_cast<Node<T>*>(dead->user);
        Node<T>* inputs[2] = {dead->a, is_binary(dead->op) ? dead->b : nullptr};
        arena<T>().deallocate(dead);
        for (Node<T>* in : inputs) {
            if (in != nullptr && --in->refs == 0) {
                in->user = next;
                next = in;
            }
        }
        dead = next;
    }
}

}  // namespace detail

// Memory use of the arena that holds every Node<T>.
template <class T>
ArenaStats arena_stats() noexcept {
    return detail::arena<T>().stats();
}

}  // namespace micrograd
