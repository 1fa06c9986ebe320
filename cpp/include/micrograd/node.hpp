// micrograd/node.hpp: Node<T>, one vertex of a graph, and its intrusive lifetime.
#pragma once

#include <cstdint>
#include <vector>

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
inline constexpr std::uint8_t flag_int_exponent = 1;  // pow_const: k was given as an integer
inline constexpr std::uint8_t flag_has_extra = 2;     // Context::on_free wants to see it die
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
    std::uint32_t refs;
    std::uint32_t user;     // opaque to the core (0 when unused): the Python module's wrapper id
    std::uint32_t pending;  // inside backward(): consumers yet to propagate; 0 otherwise
    Op op;
    std::uint8_t flags;
};

namespace detail {

// The arena of one scalar type, shared by all its graphs, and the scratch buffers that
// graph walks reuse (so they allocate only when a graph is larger than any before).
// Deliberately never destroyed: handles held by other static objects or by an interpreter
// shutting down may release nodes after static destructors have run.
template <class T>
struct Context {
    Arena<Node<T>> arena;
    std::vector<Node<T>*> work;   // release(): dead nodes whose inputs are still to drop
    std::vector<Node<T>*> stack;  // backward(): nodes to visit
    bool in_backward = false;     // backward() is running (its counts are in the nodes)
    // Called with each node flagged flag_has_extra just before it is freed, so that code
    // keeping data beside nodes (the Python module's labels) can drop it.
    void (*on_free)(Node<T>*) noexcept = nullptr;
    // Polled by long walks (backward()) every few thousand nodes; returning true stops the
    // walk with micrograd::Interrupted. The Python module checks for Ctrl-C here.
    bool (*interrupted)() noexcept = nullptr;
};

template <class T>
Context<T>& context() {
    static auto* instance = new Context<T>();
    return *instance;
}

template <class T>
Arena<Node<T>>& arena() {
    return context<T>().arena;
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
    n->refs = 0;
    n->user = 0;
    n->pending = 0;
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
// that no one else holds, with a work list instead of recursion: freeing a chain of any
// length uses constant stack.
template <class T>
void release(Node<T>* n) noexcept {
    if (--n->refs != 0) return;
    Context<T>& ctx = context<T>();
    auto& work = ctx.work;
    work.push_back(n);  // may only throw when out of memory: terminates, as noexcept says
    while (!work.empty()) {
        Node<T>* dead = work.back();
        work.pop_back();
        Node<T>* x = dead->a;
        Node<T>* y = is_binary(dead->op) ? dead->b : nullptr;
        if (dead->flags & flag_has_extra) ctx.on_free(dead);
        ctx.arena.deallocate(dead);
        if (x != nullptr && --x->refs == 0) work.push_back(x);
        if (y != nullptr && --y->refs == 0) work.push_back(y);
    }
}

}  // namespace detail

// Memory use of the arena that holds every Node<T>.
template <class T>
ArenaStats arena_stats() noexcept {
    return detail::arena<T>().stats();
}

}  // namespace micrograd
