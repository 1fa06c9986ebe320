// micrograd/node.hpp: Node<T>, one vertex of a graph, and the context that stores nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "arena.hpp"
#include "ops.hpp"

namespace micrograd {

namespace detail {
// Node::flags bits. The fused neuron's are fused_node.hpp's (4 and up).
inline constexpr std::uint8_t flag_int_exponent = 1;   // pow_const: k was given as an integer
inline constexpr std::uint8_t flag_in_side_table = 2;  // see Node::in_side_table()
}  // namespace detail

// One scalar in a graph: 48 bytes for double, 40 for float.
// Inputs are owned references: a node keeps its inputs alive, and handles keep nodes
// alive; the count in `refs` covers both. A fused neuron's node (one node for a whole
// neuron, fused_node.hpp) keeps the rest of its state after it in memory.
template <class T>
struct Node {
    T data;
    T grad;
    Node* a;  // first input (a fused neuron's bias); nullptr for a leaf
    union {
        Node* b;         // second input of a binary op
        T k;             // the exponent of pow_const
        T inner_grad;    // a fused neuron's inner grads (fused_node.hpp): all equal
        T* inner_grads;  // a fused neuron's inner grads (fused_node.hpp): in arrays
    };
    std::uint32_t refs;
    // The id of the object that stands for this node outside the core, 0 for none: the
    // Python module's wrapper object (bindings/common.hpp: Wrappers). The core only zeroes it.
    std::uint32_t wrapper_id;
    std::uint32_t pending;  // inside backward(): consumers yet to propagate; 0 otherwise
    Op op;
    std::uint8_t flags;

    // Whether code outside the core keeps an entry for this node in a table of its own (the
    // Python module's Extras: label, attributes, custom backward). Hooks::on_free is called
    // with such a node just before it is freed, so that the entry goes with it.
    bool in_side_table() const noexcept { return flags & detail::flag_in_side_table; }
    void set_in_side_table(bool in) noexcept {
        flags = in ? flags | detail::flag_in_side_table : flags & ~detail::flag_in_side_table;
    }
};

// What code embedding the core (the Python module) plugs into it, per scalar type: set
// through hooks<T>(). Null hooks are not called.
template <class T>
struct Hooks {
    // Called with each node in_side_table() just before it is freed (the Python module
    // drops the node's label and attributes).
    void (*on_free)(Node<T>*) noexcept = nullptr;
    // Called by backward() for a custom node (ops.hpp: Custom1, Custom2), to add its grad
    // times its local derivatives into its inputs: the Python module calls the node's
    // Python _backward. May throw, which stops backward() as an interrupt does.
    void (*custom_backward)(Node<T>*) = nullptr;
    // Polled by long walks (backward(), a Graph's replays) every few thousand nodes;
    // returning true stops the walk with micrograd::Interrupted. The Python module checks
    // for Ctrl-C here.
    bool (*interrupted)() noexcept = nullptr;
};

namespace detail {

// The arena of one scalar type, shared by all its graphs, and the scratch buffers that
// graph walks reuse (so they allocate only when a graph is larger than any before).
// Deliberately never destroyed: handles held by other static objects or by an interpreter
// shutting down may release nodes after static destructors have run.
template <class T>
struct Context {
    Arena<Node<T>> arena;
    BlockPool blocks;              // fused neurons' blocks and rows (fused_node.hpp)
    std::size_t block_nodes = 0;   // nodes living in blocks rather than in the arena
    std::vector<Node<T>*> work;    // release(): dead nodes whose inputs are still to drop
    std::vector<Node<T>*> stack;   // backward(): nodes to visit
    bool walking = false;          // a walk over the nodes' counts runs (detail::Walking)
    std::uint64_t expansions = 0;  // fused neurons expand()ed so far: a Graph checks its own
    Hooks<T> hooks;
    // A Graph's program (graph.hpp) whose last replay left the inner state of its fused
    // neurons (the products and bias that expand() reads, the inner grads that backward()
    // accumulates into) in the program's arrays rather than in their blocks, and the
    // function that writes it there: settle() calls it before anything reads that state.
    void* stale = nullptr;
    void (*write_stale)(void*) noexcept = nullptr;
};

template <class T>
Context<T>& context() {
    static auto* instance = new Context<T>();
    return *instance;
}

// Writes the inner state of the fused neurons that a replay left in its program (see
// Context::stale) to their blocks. Called by whatever reads that state (expand(),
// backward()); a replay does it for another graph's program before its own.
template <class T>
void settle(Context<T>& ctx) noexcept {
    if (ctx.stale == nullptr) return;
    void* program = ctx.stale;
    ctx.stale = nullptr;
    ctx.write_stale(program);
}

template <class T>
Arena<Node<T>>& arena() {
    return context<T>().arena;
}

// Makes the node in storage n (an arena slot, or a block) hold an op's result.
template <class T>
Node<T>* init_node(void* storage, Op op, T data, Node<T>* a, Node<T>* b) noexcept {
    auto* n = static_cast<Node<T>*>(storage);
    n->data = data;
    n->grad = T(0);
    n->a = a;
    n->b = b;
    n->refs = 0;
    n->wrapper_id = 0;
    n->pending = 0;
    n->op = op;
    n->flags = 0;
    if (a != nullptr) ++a->refs;
    if (b != nullptr) ++b->refs;
    return n;
}

template <class T>
Node<T>* new_node(Op op, T data, Node<T>* a, Node<T>* b) {
    return init_node<T>(arena<T>().allocate(), op, data, a, b);
}

template <class T>
void retain(Node<T>* n) noexcept {
    ++n->refs;
}

}  // namespace detail

// The hooks of Node<T>'s context (shared by every graph of T).
template <class T>
Hooks<T>& hooks() {
    return detail::context<T>().hooks;
}

// Memory use of the arena that holds the nodes of Node<T>, and in `live` the nodes in
// blocks too (fused neurons, whose nodes live beside their arrays, not in the arena).
template <class T>
ArenaStats arena_stats() noexcept {
    const detail::Context<T>& ctx = detail::context<T>();
    ArenaStats s = ctx.arena.stats();
    s.live += ctx.block_nodes;
    return s;
}

}  // namespace micrograd
