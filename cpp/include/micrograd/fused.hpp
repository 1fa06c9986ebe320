// micrograd/fused.hpp: bulk graph builders for the nn library: sums, and neurons and layers
// as fused neurons (whose node itself is fused_node.hpp's).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "value.hpp"

namespace micrograd {

// An operand of a bulk builder: a value already in the graph, or a number. A number
// becomes a new leaf at each use, as micrograd's `Value(other)` does in every op.
template <class T>
struct Operand {
    const Value<T>* value;  // nullptr for a number
    T number;

    // The value, or for a number a new leaf holding it (one more at every call).
    Value<T> value_or_new_leaf() const { return value != nullptr ? *value : Value<T>(number); }
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
    NodeRow(const Value<T>* const* values, std::size_t n) : row_(detail::new_row<T>(n)) {
        for (std::size_t k = 0; k < n; ++k) set(k, values[k]->node());
    }
    // The nodes of x's values, and a new leaf for each number (at every construction, as
    // micrograd's Value(xi) makes one at each use).
    NodeRow(const Operand<T>* x, std::size_t n) : row_(detail::new_row<T>(n)) {
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
    return Value<T>::from_node(detail::new_neuron(w.get(), x.get(), b.node(), relu));
}

// The same from n weights and n operands (a number in x becomes a new leaf).
template <class T>
Value<T> neuron(const Value<T>* const* w, const Value<T>& b, const Operand<T>* x, std::size_t n,
                bool relu) {
    return neuron(NodeRow<T>(w, n), b, NodeRow<T>(x, n), relu);
}

}  // namespace micrograd
