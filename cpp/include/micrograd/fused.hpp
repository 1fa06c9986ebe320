// micrograd/fused.hpp: bulk graph builders (sums, neurons, layers) for the nn library.
#pragma once

#include <cstddef>
#include <vector>

#include "value.hpp"

namespace micrograd {

// An operand of a bulk builder: a value already in the graph, or a number. A number
// becomes a new leaf at each use, as micrograd's `Value(other)` does in every op, so the
// graph built here is node for node the one micrograd's Python code builds.
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

namespace detail {

// A new node op(x, y), its value computed now. It holds references to its inputs; none
// is held on it yet. Cannot throw once its slot is reserved.
template <class T>
Node<T>* apply(Op op, Node<T>* x, Node<T>* y) {
    return new_node<T>(op, forward(op, x->data, y != nullptr ? y->data : T(0)), x, y);
}

}  // namespace detail

// micrograd's Neuron.__call__: sum((wi*xi for wi, xi in zip(w, x)), b), then relu.
// w (pointers to the weights, which callers may borrow) and x have the same length n;
// a layer is this applied by each of its neurons to the same x, in order.
// Slots for every node are reserved first, so that building cannot fail halfway and leave
// unowned nodes behind; the nodes are then linked directly, without handles, which saves
// the reference-count traffic of temporaries in this, the hottest loop of training.
template <class T>
Value<T> neuron(const Value<T>* const* w, const Value<T>& b, const Operand<T>* x, std::size_t n,
                bool relu) {
    detail::arena<T>().reserve(3 * n + 1);  // n products, n sums, n number leaves, relu
    Node<T>* act = b.node();
    for (std::size_t i = 0; i < n; ++i) {
        Node<T>* xi = x[i].value != nullptr
                          ? x[i].value->node()
                          : detail::new_node<T>(Op::leaf, x[i].number, nullptr, nullptr);
        act = detail::apply(Op::add, act, detail::apply(Op::mul, w[i]->node(), xi));
    }
    if (relu) act = detail::apply<T>(Op::relu, act, nullptr);
    return Value<T>::from_node(act);
}

}  // namespace micrograd
