// micrograd/fused.hpp: bulk graph builders (sums, neurons, layers) for the nn library.
#pragma once

#include <cstddef>
#include <stdexcept>
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

// micrograd's Neuron.__call__: sum((wi*xi for wi, xi in zip(w, x)), b), then relu.
// w (pointers to the weights, which callers may borrow) and x have the same length n;
// a layer is this applied by each of its neurons to the same x, in order.
//
// The result is one fused node (Op::neuron or Op::neuron_relu) rather than micrograd's 2n
// or 2n + 1 nodes: the same values, computed in the same order, and backward() gives every
// input the same contributions in the same order, so every grad is the same to the last
// bit; expand() turns it into micrograd's nodes when someone looks at its inputs. A number
// in x becomes a new leaf, as micrograd's Value(xi) does. With n == 0 the sum is b itself.
// Everything that can fail is done first: building cannot fail halfway and leave unowned
// nodes behind.
template <class T>
Value<T> neuron(const Value<T>* const* w, const Value<T>& b, const Operand<T>* x, std::size_t n,
                bool relu) {
    if (n == 0) return relu ? b.relu() : b;
    std::size_t numbers = 0;
    for (std::size_t k = 0; k < n; ++k) numbers += x[k].value == nullptr;
    detail::arena<T>().reserve(numbers + 1);
    Fused<T>* f = Fused<T>::create(n);
    Node<T>** fw = f->w();
    Node<T>** fx = f->x();
    T* prod = f->prod();
    T sum = f->bias = b.data();
    for (std::size_t k = 0; k < n; ++k) {
        Node<T>* wk = w[k]->node();
        Node<T>* xk = x[k].value != nullptr
                          ? x[k].value->node()
                          : detail::new_node<T>(Op::leaf, x[k].number, nullptr, nullptr);
        ++wk->refs;
        ++xk->refs;
        fw[k] = wk;
        fx[k] = xk;
        prod[k] = detail::forward(Op::mul, wk->data, xk->data);
        sum = detail::forward(Op::add, sum, prod[k]);
    }
    const Op op = relu ? Op::neuron_relu : Op::neuron;
    Node<T>* out = detail::new_node<T>(op, relu ? detail::forward(Op::relu, sum, T(0)) : sum,
                                       b.node(), nullptr);
    out->fused = f;
    return Value<T>::from_node(out);
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
    ctx.arena.reserve(2 * node->fused->n);  // n products, at most n sums: cannot fail below
    Fused<T>* f = node->fused;
    const std::size_t n = f->n;
    const bool relu = node->op == Op::neuron_relu;
    Node<T>* sum = node->a;  // s[-1] = b
    T sum_data = f->bias;
    Node<T>* last = nullptr;  // without relu: m[n-1], the node's second input
    for (std::size_t k = 0; k < n; ++k) {
        Node<T>* m = detail::new_node<T>(Op::mul, f->prod()[k], f->w()[k], f->x()[k]);
        m->grad = f->prod_grad()[k];
        if (k + 1 == n && !relu) {
            last = m;
            break;
        }
        sum_data = detail::forward(Op::add, sum_data, f->prod()[k]);
        sum = detail::new_node<T>(Op::add, sum_data, sum, m);
        sum->grad = f->sum_grad()[k];
    }
    // The new nodes hold references to b, w and x now; the node gives up its own.
    Node<T>* bias = node->a;
    node->op = relu ? Op::relu : Op::add;
    node->a = sum;
    node->b = last;
    detail::retain(sum);
    if (last != nullptr) detail::retain(last);
    --bias->refs;
    for (std::size_t k = 0; k < n; ++k) --f->w()[k]->refs, --f->x()[k]->refs;
    Fused<T>::destroy(f);
}

}  // namespace micrograd
