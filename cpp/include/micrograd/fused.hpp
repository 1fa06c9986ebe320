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

// micrograd's Neuron.__call__: sum((wi*xi for wi, xi in zip(w, x)), b), then relu.
// w (pointers to the weights, which callers may borrow) and x have the same length n;
// a layer is this applied by each of its neurons to the same x, in order.
template <class T>
Value<T> neuron(const Value<T>* const* w, const Value<T>& b, const Operand<T>* x,
                std::size_t n, bool relu) {
    Value<T> act = b;
    for (std::size_t i = 0; i < n; ++i) act = act + *w[i] * x[i].get();
    return relu ? act.relu() : act;
}

}  // namespace micrograd
