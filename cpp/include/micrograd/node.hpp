// micrograd/node.hpp: Node<T>, one vertex of a graph, and its intrusive lifetime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "arena.hpp"
#include "ops.hpp"

namespace micrograd {

template <class T>
struct Row;
template <class T>
struct Fused;

namespace detail {
// Node::flags bits.
inline constexpr std::uint8_t flag_int_exponent = 1;  // pow_const: k was given as an integer
inline constexpr std::uint8_t flag_has_extra = 2;     // Context::on_free wants to see it die
// A fused neuron's inner grads (Fused): all 0 while neither flag is set; all equal to the
// node's inner_grad after its first backward (flag_fused_uniform); in the arrays of
// inner_grads after more (flag_fused_arrays).
inline constexpr std::uint8_t flag_fused_uniform = 4;
inline constexpr std::uint8_t flag_fused_arrays = 8;
// A fused neuron whose bias, weights and inputs are all leaves: the walks of backward()
// have nothing to visit there (a node never changes between leaf and not).
inline constexpr std::uint8_t flag_fused_leaves = 16;
// The node starts a block of Context::blocks, its Fused part after it, rather than being a
// slot of the arena: a fused neuron, or one that expand() has turned into micrograd's node.
inline constexpr std::uint8_t flag_in_block = 32;
}  // namespace detail

// One scalar in a graph: 48 bytes for double, 40 for float.
// A fused neuron's node is followed in memory by the rest of the neuron (its Fused, see
// fused_part()), in one block, so that walking the graph reaches both in one cache line.
// Inputs are owned references: a node keeps its inputs alive, and handles keep nodes
// alive; the count in `refs` covers both.
template <class T>
struct Node {
    T data;
    T grad;
    Node* a;  // first input (a fused neuron's bias); nullptr for a leaf
    union {
        Node* b;         // second input of a binary op
        T k;             // the exponent of pow_const
        T inner_grad;    // a fused neuron's inner grads, with flag_fused_uniform (see Fused)
        T* inner_grads;  // with flag_fused_arrays: s[k]'s grads, then m[k]'s
    };
    std::uint32_t refs;
    std::uint32_t user;     // opaque to the core (0 when unused): the Python module's wrapper id
    std::uint32_t pending;  // inside backward(): consumers yet to propagate; 0 otherwise
    Op op;
    std::uint8_t flags;
};

// A shared array of references to nodes: a neuron's weights (the same at every call) or a
// layer's inputs (the same for each of its neurons), held by fused neurons. It holds one
// reference to each of its nodes; `refs` counts the fused neurons and handles holding it.
// One allocation: this header, then Node<T>* nodes[n].
template <class T>
struct Row {
    std::uint32_t refs;
    std::uint32_t n;
    std::uint32_t pending;  // inside backward(): as Node::pending, for the row as a vertex
    bool interior;          // some node is not a leaf (a node never changes between leaf and not)

    Node<T>** nodes() noexcept { return reinterpret_cast<Node<T>**>(this + 1); }
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(Row) + n * sizeof(Node<T>*); }
};

// The rest of a fused neuron with n >= 1 inputs, whose node holds the bias b (its input
// `a`) and its output, micrograd's last node of
//     s[-1] = b,  m[k] = w[k] * x[k],  s[k] = s[k-1] + m[k]  (k < n),  out = s[n-1] or relu.
// What micrograd keeps in the other nodes of that graph is kept here: each m[k]'s value
// (for expand()), and the grads backward() accumulates into s[k] and m[k], so that calling
// backward() several times without zeroing accumulates exactly as micrograd does. After
// one backward they are all the same (the node's inner_grad); only a second one needs
// arrays of them, allocated then (inner_grads; the node's flags say which:
// flag_fused_uniform, flag_fused_arrays).
// One block: the neuron's Node, this header, then T prod[n]; with arrays, a second block:
// T sum_grad[n], prod_grad[n]. What backward() reads, the node and the rows w and x, is in
// the block's first cache line (for double; blocks are aligned to cache lines).
template <class T>
struct Fused {
    Row<T>* w;
    Row<T>* x;
    T bias;         // b's value when the node was made: s[-1] for expand()
    std::size_t n;  // the rows' size (kept for freeing the block after expand() drops them)

    T* prod() noexcept { return reinterpret_cast<T*>(this + 1); }  // m[k]'s value
    // The block of a fused neuron with n inputs: its node, then this.
    static std::size_t block_bytes(std::size_t n) noexcept {
        return sizeof(Node<T>) + sizeof(Fused) + n * sizeof(T);
    }
    static std::size_t grads_bytes(std::size_t n) noexcept { return 2 * n * sizeof(T); }
};

namespace detail {

// The Fused part of a node flagged flag_in_block (which follows the node).
template <class T>
Fused<T>& fused_part(Node<T>& node) noexcept {
    return *std::launder(
        reinterpret_cast<Fused<T>*>(reinterpret_cast<unsigned char*>(&node) + sizeof(Node<T>)));
}

// The arena of one scalar type, shared by all its graphs, and the scratch buffers that
// graph walks reuse (so they allocate only when a graph is larger than any before).
// Deliberately never destroyed: handles held by other static objects or by an interpreter
// shutting down may release nodes after static destructors have run.
template <class T>
struct Context {
    Arena<Node<T>> arena;
    BlockPool blocks;              // Row and fused neuron blocks
    std::size_t block_nodes = 0;   // nodes flagged flag_in_block
    std::vector<Node<T>*> work;    // release(): dead nodes whose inputs are still to drop
    std::vector<Node<T>*> stack;   // backward(): nodes to visit
    bool in_backward = false;      // backward() or a replay is running (detail::Walking)
    std::uint64_t expansions = 0;  // fused neurons expand()ed so far: a Graph checks its own
    // Called with each node flagged flag_has_extra just before it is freed, so that code
    // keeping data beside nodes (the Python module's labels) can drop it.
    void (*on_free)(Node<T>*) noexcept = nullptr;
    // Called by backward() for a custom node (ops.hpp: Custom1, Custom2), to add its grad
    // times its local derivatives into its inputs: the Python module calls the node's
    // Python _backward. May throw, which stops backward() as an interrupt does.
    void (*custom_backward)(Node<T>*) = nullptr;
    // A Graph's program (graph.hpp) whose last replay left the inner state of its fused
    // neurons (the products and bias that expand() reads, the inner grads that backward()
    // accumulates into) in the program's arrays rather than in their blocks, and the
    // function that writes it there: settle() calls it before anything reads that state.
    void* stale = nullptr;
    void (*write_stale)(void*) noexcept = nullptr;
    // Polled by long walks (backward()) every few thousand nodes; returning true stops the
    // walk with micrograd::Interrupted. The Python module checks for Ctrl-C here.
    bool (*interrupted)() noexcept = nullptr;
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
    n->user = 0;
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

template <class T>
void free_row(Row<T>* r) noexcept {
    context<T>().blocks.deallocate(r, Row<T>::bytes(r->n));
}

// Frees a fused neuron's arrays of inner grads, if it has them.
template <class T>
void free_grads(Node<T>& node) noexcept {
    if (!(node.flags & flag_fused_arrays)) return;
    context<T>().blocks.deallocate(node.inner_grads, Fused<T>::grads_bytes(fused_part(node).n));
    node.flags &= ~flag_fused_arrays;
}

// Returns the block of a dead node flagged flag_in_block, whose neuron has n inputs.
template <class T>
void free_block(Context<T>& ctx, Node<T>* dead, std::size_t n) noexcept {
    if (dead->flags & flag_has_extra) ctx.on_free(dead);
    ctx.blocks.deallocate(dead, Fused<T>::block_bytes(n));
    --ctx.block_nodes;
}

// Returns a dead node's storage, to the arena or, with its Fused part, to the block pool.
template <class T>
void free_storage(Context<T>& ctx, Node<T>* dead) noexcept {
    if (dead->flags & flag_in_block) return free_block(ctx, dead, fused_part(*dead).n);
    if (dead->flags & flag_has_extra) ctx.on_free(dead);
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
    auto drop_row = [&drop](Row<T>* r) {
        if (--r->refs != 0) return;
        for (std::uint32_t k = 0; k < r->n; ++k) drop(r->nodes()[k]);
        free_row(r);
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
        if (is_fused(dead->op)) {
            Fused<T>& f = fused_part(*dead);
            const std::size_t n = f.w->n;  // f.n, from a line that is in cache
            drop_row(f.w);
            drop_row(f.x);
            free_grads(*dead);
            free_block(ctx, dead, n);
        } else {
            free_storage(ctx, dead);
        }
    }
}

// Drops one reference to a row; frees it when it was the last, releasing its nodes.
template <class T>
void release(Row<T>* r) noexcept {
    if (--r->refs != 0) return;
    for (std::uint32_t k = 0; k < r->n; ++k) release(r->nodes()[k]);
    free_row(r);
}

}  // namespace detail

// Memory use of the arena that holds the nodes of Node<T>, and in `live` the fused neurons
// too (whose nodes live in blocks beside their arrays, not in the arena's capacity).
template <class T>
ArenaStats arena_stats() noexcept {
    const detail::Context<T>& ctx = detail::context<T>();
    ArenaStats s = ctx.arena.stats();
    s.live += ctx.block_nodes;
    return s;
}

}  // namespace micrograd
