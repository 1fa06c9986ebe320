// micrograd/fused.hpp: bulk graph builders (sums, neurons, layers) for the nn library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "value.hpp"

namespace micrograd {

// An operand of a bulk builder: a value already in the graph, or a number. A number
// becomes a new leaf at each use, as micrograd's `Value(other)` does in every op.
template <class T>
struct Operand {
    const Value<T>* value;  // nullptr for a number
    T number;

    Value<T> get() const { return value != nullptr ? *value : Value<T>(number); }
};

// Python's sum(xs, start): ((start + x0) + x1) + ..., one '+' node per term, in order.
// Python computes start + x0 as x0.__radd__(start) when start is a number; addition is
// commutative in IEEE arithmetic, so the values are the same.
template <class T, class It>
Value<T> sum(It first, It last, Value<T> start) {
    for (; first != last; ++first) start = start + *first;
    return start;
}

// A counted reference to a Row: the nodes of some values, in order, shared by the fused
// neurons built from it (fused neurons keep the row alive while they live).
template <class T>
class NodeRow {
public:
    // The nodes of n values.
    NodeRow(const Value<T>* const* values, std::size_t n) : row_(make(n)) {
        for (std::size_t k = 0; k < n; ++k) set(k, values[k]->node());
    }
    // The nodes of x's values, and a new leaf for each number (at every construction, as
    // micrograd's Value(xi) makes one at each use).
    NodeRow(const Operand<T>* x, std::size_t n) : row_(make(n)) {
        std::size_t numbers = 0;
        for (std::size_t k = 0; k < n; ++k) numbers += x[k].value == nullptr;
        try {
            detail::arena<T>().reserve(numbers);
        } catch (...) {
            detail::free_row(row_);
            throw;
        }
        for (std::size_t k = 0; k < n; ++k)
            set(k, x[k].value != nullptr
                       ? x[k].value->node()
                       : detail::new_node<T>(Op::leaf, x[k].number, nullptr, nullptr));
    }
    NodeRow(const NodeRow& other) noexcept : row_(other.row_) { ++row_->refs; }
    NodeRow& operator=(NodeRow other) noexcept {
        std::swap(row_, other.row_);
        return *this;
    }
    ~NodeRow() { detail::release(row_); }

    std::size_t size() const noexcept { return row_->n; }
    Row<T>* get() const noexcept { return row_; }

private:
    static Row<T>* make(std::size_t n) {
        if (n > UINT32_MAX) throw std::length_error("a neuron can have at most 2**32 - 1 inputs");
        auto* r = static_cast<Row<T>*>(detail::context<T>().blocks.allocate(Row<T>::bytes(n)));
        return new (r) Row<T>{1, static_cast<std::uint32_t>(n), 0, false};
    }
    void set(std::size_t k, Node<T>* node) noexcept {
        detail::retain(node);
        row_->nodes()[k] = node;
        row_->interior |= node->op != Op::leaf;
    }

    Row<T>* row_;
};

// micrograd's Neuron.__call__: sum((wi*xi for wi, xi in zip(w, x)), b), then relu; w and x
// must have the same size n. A layer is this applied by each of its neurons to the same
// x, in order: they can share one row of inputs.
//
// The result is one fused node (Op::neuron or Op::neuron_relu) rather than micrograd's 2n
// or 2n + 1 nodes: the same values, computed in the same order, and backward() gives every
// input the same contributions in the same order, so every grad is the same to the last
// bit; expand() turns it into micrograd's nodes when someone looks at its inputs.
// With n == 0 the sum is b itself.
template <class T>
Value<T> neuron(const NodeRow<T>& w, const Value<T>& b, const NodeRow<T>& x, bool relu) {
    const std::size_t n = w.size();
    if (x.size() != n)
        throw std::invalid_argument("a neuron with " + std::to_string(n) + " weights got " +
                                    std::to_string(x.size()) + " inputs");
    if (n == 0) return relu ? b.relu() : b;
    auto& ctx = detail::context<T>();
    void* block = ctx.blocks.allocate(Fused<T>::block_bytes(n));  // cannot fail from here on
    ++ctx.block_nodes;
    auto* f = new (static_cast<unsigned char*>(block) + sizeof(Node<T>))
        Fused<T>{w.get(), x.get(), b.data(), n};  // after the node, as fused_part() finds it
    ++f->w->refs;
    ++f->x->refs;
    Node<T>** wn = f->w->nodes();
    Node<T>** xn = f->x->nodes();
    T* prod = f->prod();
    T sum = f->bias;
    for (std::size_t k = 0; k < n; ++k) {
        prod[k] = detail::forward(Op::mul, wn[k]->data, xn[k]->data);
        sum = detail::forward(Op::add, sum, prod[k]);
    }
    Node<T>* out =
        detail::init_node<T>(block, relu ? Op::neuron_relu : Op::neuron,
                             relu ? detail::forward(Op::relu, sum, T(0)) : sum, b.node(), nullptr);
    out->flags = detail::flag_in_block;
    if (b.op() == Op::leaf && !f->w->interior && !f->x->interior)
        out->flags |= detail::flag_fused_leaves;
    return Value<T>::from_node(out);
}

// The same from n weights and n operands (a number in x becomes a new leaf).
template <class T>
Value<T> neuron(const Value<T>* const* w, const Value<T>& b, const Operand<T>* x, std::size_t n,
                bool relu) {
    return neuron(NodeRow<T>(w, n), b, NodeRow<T>(x, n), relu);
}

// Turns a fused neuron node into the nodes micrograd builds for it, in place: the node
// becomes the graph's last node ('+' or 'ReLU', same value, grad, label and identity), and
// the nodes before it are made with the values and grads micrograd's would have now.
// Does nothing to any other node. Not while backward() runs (std::logic_error).
template <class T>
void expand(Node<T>* node) {
    if (!is_fused(node->op)) return;
    auto& ctx = detail::context<T>();
    if (ctx.in_backward)
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
    // The new nodes hold references to b, w and x now; the node gives up its own, and keeps
    // of its block only the node (freed with it) and n (which says the block's size).
    Node<T>* bias = node->a;
    detail::free_grads(*node);
    node->op = relu ? Op::relu : Op::add;
    node->flags &= ~(detail::flag_fused_uniform | detail::flag_fused_leaves);
    node->a = sum;
    node->b = last;
    detail::retain(sum);
    if (last != nullptr) detail::retain(last);
    detail::release(bias);
    detail::release(f->w);
    detail::release(f->x);
}

// One node's own backward step, as micrograd's `node._backward()`: adds its grad times its
// local derivatives into its inputs' grads, once (a leaf: nothing). A fused neuron is
// expanded first, so that the step is that of micrograd's last node for it.
template <class T>
void backward_step(Node<T>* n) {
    if (n->op == Op::leaf) return;
    expand(n);
    detail::propagate(*n);
}

}  // namespace micrograd
