// micrograd/fused_node.hpp: a fused neuron, one node for micrograd's whole neuron: its block
// and rows, its backward step, and its expansion into micrograd's nodes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>

#include "node.hpp"

namespace micrograd {

namespace detail {
// Node::flags bits of a fused neuron. Its inner grads (Fused): all 0 while neither flag is
// set; all equal to the node's inner_grad after its first backward (flag_fused_uniform); in
// the arrays of inner_grads after more (flag_fused_arrays).
inline constexpr std::uint8_t flag_fused_uniform = 4;
inline constexpr std::uint8_t flag_fused_arrays = 8;
// A fused neuron whose bias, weights and inputs are all leaves: the walks of backward()
// have nothing to visit there (a node never changes between leaf and not).
inline constexpr std::uint8_t flag_fused_leaves = 16;
// The node starts a block of Context::blocks, its Fused part after it, rather than being a
// slot of the arena: a fused neuron, or one that expand() has turned into micrograd's node.
inline constexpr std::uint8_t flag_in_block = 32;
}  // namespace detail

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
// the block's first cache line (for double; blocks are aligned to cache lines), so that
// walking the graph reaches both in one cache line.
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

// A new row of n nodes, held once, for the caller to fill (its nodes and `interior`).
template <class T>
Row<T>* new_row(std::size_t n) {
    if (n > UINT32_MAX) throw std::length_error("a neuron can have at most 2**32 - 1 inputs");
    auto* r = static_cast<Row<T>*>(context<T>().blocks.allocate(Row<T>::bytes(n)));
    return new (r) Row<T>{1, static_cast<std::uint32_t>(n), 0, false};
}

template <class T>
void free_row(Row<T>* r) noexcept {
    context<T>().blocks.deallocate(r, Row<T>::bytes(r->n));
}

// Drops one reference to a row; when it was the last, calls drop(node) for each of the
// row's nodes (giving up the row's reference to it) and frees the row.
template <class T, class Drop>
void drop_row(Row<T>* r, const Drop& drop) noexcept {
    if (--r->refs != 0) return;
    for (std::uint32_t k = 0; k < r->n; ++k) drop(r->nodes()[k]);
    free_row(r);
}

// A new fused neuron computing sum((w[k]*x[k] ...), b), then its relu, on rows of the same
// size n >= 1 (fused.hpp's neuron() checks), holding a reference to b and to each row. The
// caller takes the first reference to the node.
template <class T>
Node<T>* new_neuron(Row<T>* w, Row<T>* x, Node<T>* b, bool relu) {
    const std::size_t n = w->n;
    auto& ctx = context<T>();
    void* block = ctx.blocks.allocate(Fused<T>::block_bytes(n));  // cannot fail from here on
    ++ctx.block_nodes;
    auto* f = new (static_cast<unsigned char*>(block) + sizeof(Node<T>))
        Fused<T>{w, x, b->data, n};  // after the node, as fused_part() finds it
    ++w->refs;
    ++x->refs;
    Node<T>** wn = w->nodes();
    Node<T>** xn = x->nodes();
    T* prod = f->prod();
    T sum = f->bias;
    for (std::size_t k = 0; k < n; ++k) {
        prod[k] = forward(Op::mul, wn[k]->data, xn[k]->data);
        sum = forward(Op::add, sum, prod[k]);
    }
    Node<T>* out = init_node<T>(block, relu ? Op::neuron_relu : Op::neuron,
                                relu ? forward(Op::relu, sum, T(0)) : sum, b, nullptr);
    out->flags = flag_in_block;
    if (b->op == Op::leaf && !w->interior && !x->interior) out->flags |= flag_fused_leaves;
    return out;
}

// Frees a fused neuron's arrays of inner grads, if it has them.
template <class T>
void free_inner_grads(Node<T>& node) noexcept {
    if (!(node.flags & flag_fused_arrays)) return;
    context<T>().blocks.deallocate(node.inner_grads, Fused<T>::grads_bytes(fused_part(node).n));
    node.flags &= ~flag_fused_arrays;
}

// Returns the block of a dead node flagged flag_in_block, whose neuron has n inputs.
template <class T>
void free_block(Context<T>& ctx, Node<T>* dead, std::size_t n) noexcept {
    if (dead->in_side_table()) ctx.hooks.on_free(dead);
    ctx.blocks.deallocate(dead, Fused<T>::block_bytes(n));
    --ctx.block_nodes;
}

// Frees a dead fused neuron, whose bias release() has dropped: drops its rows (through
// drop(node) for each node of a row it held last), its inner grads and its block.
template <class T, class Drop>
void free_neuron(Context<T>& ctx, Node<T>* dead, const Drop& drop) noexcept {
    Fused<T>& f = fused_part(*dead);
    const std::size_t n = f.w->n;  // f.n, from a line that is in cache
    drop_row(f.w, drop);
    drop_row(f.x, drop);
    free_inner_grads(*dead);
    free_block(ctx, dead, n);
}

// Whether n is a fused neuron of leaves only (flag_fused_leaves): the walks have nothing
// to visit below it. False for any other node.
template <class T>
bool is_neuron_of_leaves(const Node<T>& n) noexcept {
    return n.flags & flag_fused_leaves;
}

// for_each_interior_input() (backward.hpp) for the rows of a fused neuron, which the walks
// of backward() treat as vertices of the graph too: n calls enter(row) for each of its
// rows with a node that is not a leaf, and visits the row's nodes only when that returns
// true. So a row shared by the m neurons of a layer costs the walks m row
// visits plus one visit of each of its nodes, instead of m visits of each. Each node of a
// row is used by every neuron holding the row, so it is ready exactly when the row is, as
// in the unfused graph; its nodes are visited in order, so backward() pops them in the
// order in which it would reach them in the unfused graph, and every node gets its
// contributions in the same order, hence the same rounding, fused or not (where a neuron's
// weights are leaves, as in nn; with both rows holding interior nodes the order may
// differ, still topological).
template <class T, class Visit, class Enter>
void for_each_interior_row_node(Node<T>& n, Visit visit, Enter enter) {
    const Fused<T>& f = fused_part(n);
    for (Row<T>* row : {f.w, f.x}) {
        if (!row->interior || !enter(row)) continue;
        Node<T>** nodes = row->nodes();
        for (std::uint32_t k = 0; k < row->n; ++k)
            if (nodes[k]->op != Op::leaf) visit(nodes[k]);
    }
}

// propagate() (backward.hpp) for a fused neuron: micrograd's steps for its inner nodes, in
// the order of the unfused graph (the relu, then s[n-1], m[n-1], s[n-2], ...), with their
// grads accumulated as micrograd accumulates them in its nodes. Their second backward
// allocates the arrays (std::bad_alloc leaves the node as it was).
template <class T>
void propagate_fused(Node<T>& n) {
    Fused<T>& f = fused_part(n);
    const std::size_t len = f.w->n;  // f.n, from a line that is in cache
    Node<T>** w = f.w->nodes();
    Node<T>** x = f.x->nodes();
    const bool relu = n.op == Op::neuron_relu;
    const T from_relu = relu ? op::Relu::partials(T(0), T(0), n.data).dx * n.grad : T(0);
    if (!(n.flags & (flag_fused_uniform | flag_fused_arrays))) {
        // The first time every inner grad goes from 0 to the same g (0 + g: -0.0 becomes
        // 0.0, as micrograd's `grad += g` from 0). Only b gets s[0]'s own grad: n.grad
        // when s[0] is the node itself.
        const T g = T(0) + (relu ? from_relu : n.grad);
        n.inner_grad = g;
        n.flags |= flag_fused_uniform;
        for (std::size_t k = len; k-- > 1;) {
            w[k]->grad += x[k]->data * g;
            x[k]->grad += w[k]->data * g;
        }
        n.a->grad += (len == 1 && !relu) ? n.grad : g;  // before m[0], as micrograd's order
        w[0]->grad += x[0]->data * g;
        x[0]->grad += w[0]->data * g;
        return;
    }
    if (n.flags & flag_fused_uniform) {  // the second time: the arrays start from inner_grad
        auto* grads = static_cast<T*>(context<T>().blocks.allocate(Fused<T>::grads_bytes(len)));
        std::fill(grads, grads + 2 * len, n.inner_grad);
        n.inner_grads = grads;
        n.flags = (n.flags & ~flag_fused_uniform) | flag_fused_arrays;
    }
    T* sum_grad = n.inner_grads;
    T* prod_grad = sum_grad + len;
    T g = n.grad;  // s[n-1]'s grad: the node's own, or what its relu gave it
    if (relu) {
        sum_grad[len - 1] += from_relu;
        g = sum_grad[len - 1];
    }
    for (std::size_t k = len; k-- > 0;) {
        // s[k] = s[k-1] + m[k]: both inputs get s[k]'s grad (s[-1] is the bias node)
        T& before = k > 0 ? sum_grad[k - 1] : n.a->grad;
        before += g;
        prod_grad[k] += g;
        // m[k] = w[k] * x[k]
        w[k]->grad += x[k]->data * prod_grad[k];
        x[k]->grad += w[k]->data * prod_grad[k];
        g = before;
    }
}

}  // namespace detail

// Turns a fused neuron node into the nodes micrograd builds for it, in place: the node
// becomes the graph's last node ('+' or 'ReLU', same value, grad, label and identity), and
// the nodes before it are made with the values and grads micrograd's would have now.
// Does nothing to any other node. Not while backward() runs (std::logic_error).
template <class T>
void expand(Node<T>* node) {
    if (!is_fused(node->op)) return;
    auto& ctx = detail::context<T>();
    if (ctx.walking)
        throw std::logic_error("a neuron's inputs cannot be expanded while backward() runs");
    detail::settle(ctx);
    Fused<T>* f = &detail::fused_part(*node);
    const std::size_t n = f->n;
    ctx.arena.reserve(2 * n);  // n products, at most n sums: cannot fail below
    ++ctx.expansions;
    const bool relu = node->op == Op::neuron_relu;
    const bool uniform = node->flags & detail::flag_fused_uniform;
    const bool arrays = node->flags & detail::flag_fused_arrays;
    auto inner_grad = [&](const T* array, std::size_t k) {
        return arrays ? array[k] : uniform ? node->inner_grad : T(0);
    };
    Node<T>* sum = node->a;  // s[-1] = b
    T sum_data = f->bias;
    Node<T>* last = nullptr;  // without relu: m[n-1], the node's second input
    for (std::size_t k = 0; k < n; ++k) {
        Node<T>* m = detail::new_node<T>(Op::mul, f->prod()[k], f->w->nodes()[k], f->x->nodes()[k]);
        m->grad = inner_grad(node->inner_grads + n, k);
        if (k + 1 == n && !relu) {
            last = m;
            break;
        }
        sum_data = detail::forward(Op::add, sum_data, f->prod()[k]);
        sum = detail::new_node<T>(Op::add, sum_data, sum, m);
        sum->grad = inner_grad(node->inner_grads, k);
    }
    // The new nodes hold references to b, w and x now; the node gives up its own, none of
    // them the last (so nothing is freed here but rows), and keeps of its block only the
    // node (freed with it) and n (which says the block's size).
    Node<T>* bias = node->a;
    detail::free_inner_grads(*node);
    node->op = relu ? Op::relu : Op::add;
    node->flags &= ~(detail::flag_fused_uniform | detail::flag_fused_leaves);
    node->a = sum;
    node->b = last;
    detail::retain(sum);
    if (last != nullptr) detail::retain(last);
    auto drop_held_elsewhere = [](Node<T>* in) noexcept { --in->refs; };
    drop_held_elsewhere(bias);
    detail::drop_row(f->w, drop_held_elsewhere);
    detail::drop_row(f->x, drop_held_elsewhere);
}

}  // namespace micrograd
