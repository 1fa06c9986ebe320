// micrograd/value.hpp: Value<T>, the user-facing handle to a node, and its operators.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backward.hpp"

namespace micrograd {

// A reference-counted handle to one scalar of a graph, with micrograd's operators.
// Copies share the node; the node lives while any handle or consumer refers to it.
//
//     Value<double> a = 2.0, b = -3.0;
//     Value<double> c = (a * b + a.pow(2)).relu();
//     c.backward();  // a.grad() == dc/da
template <class T>
class Value {
    static_assert(std::is_floating_point_v<T>, "Value<T> needs a floating-point T");

public:
    using scalar_type = T;
    using node_type = Node<T>;

    // A new leaf holding `data` (implicit, so numbers mix with values in expressions).
    Value(T data = T(0)) : Value(make(Op::leaf, data, nullptr, nullptr)) {}

    // A custom node (ops.hpp: Custom1, Custom2) holding `data`, with the inputs x and y
    // (y may be null; both null: a new leaf): its backward is Hooks::custom_backward.
    static Value custom(T data, const Value* x, const Value* y) {
        if (x == nullptr) return Value(data);
        const Op op = y == nullptr ? Op::custom1 : Op::custom2;
        return Value(make(op, data, x->n_, y == nullptr ? nullptr : y->n_));
    }

    // A new handle to an existing node (adds a reference).
    static Value from_node(node_type* n) noexcept { return Value(n); }

    Value(const Value& other) noexcept : n_(other.n_) { detail::retain(n_); }
    Value(Value&& other) noexcept : n_(std::exchange(other.n_, nullptr)) {}
    Value& operator=(Value other) noexcept {
        std::swap(n_, other.n_);
        return *this;
    }
    ~Value() {
        if (n_ != nullptr) detail::release(n_);
    }

    T data() const noexcept { return n_->data; }
    void set_data(T data) noexcept { n_->data = data; }
    T grad() const noexcept { return n_->grad; }
    void set_grad(T grad) noexcept { n_->grad = grad; }
    Op op() const noexcept { return n_->op; }
    node_type* node() const noexcept { return n_; }

    // The exponent of a pow_const node, and whether it was given as an integer.
    T exponent() const noexcept { return n_->k; }
    bool exponent_is_integer() const noexcept { return n_->flags & detail::flag_int_exponent; }

    void backward() { micrograd::backward(n_); }

    // micrograd's `_prev`, in order: none for a leaf, else the first input and, for a
    // binary op, the second. A fused neuron is expanded first (expand()), so that it shows
    // the inputs of micrograd's last node for it.
    std::vector<Value> inputs() const {
        expand(n_);
        std::vector<Value> in;
        if (n_->a != nullptr) in.push_back(Value(n_->a));
        if (detail::is_binary(n_->op)) in.push_back(Value(n_->b));
        return in;
    }

    friend Value operator+(const Value& x, const Value& y) { return binary(Op::add, x, y); }
    friend Value operator-(const Value& x, const Value& y) { return binary(Op::sub, x, y); }
    friend Value operator*(const Value& x, const Value& y) { return binary(Op::mul, x, y); }
    friend Value operator/(const Value& x, const Value& y) { return binary(Op::div, x, y); }
    friend Value pow(const Value& x, const Value& y) { return binary(Op::pow, x, y); }
    // max(x, y), a constant to backward() (losses.hpp's logsumexp shift).
    friend Value max_shift(const Value& x, const Value& y) { return binary(Op::max_shift, x, y); }
    Value operator-() const { return apply(Op::neg); }

    // x ** k for a constant k; an integral k is remembered for micrograd's "**2" label.
    template <class K, std::enable_if_t<std::is_arithmetic_v<K>, int> = 0>
    Value pow(K k) const {
        return pow_constant(T(k), std::is_integral_v<K>);
    }
    Value pow_constant(T k, bool k_is_integer) const {
        Value out(make(Op::pow_const, detail::forward(Op::pow_const, data(), k), n_, nullptr));
        out.n_->k = k;
        if (k_is_integer) out.n_->flags |= detail::flag_int_exponent;
        return out;
    }

    // A unary op of the table with no constant (relu, tanh, ...): what the methods below do.
    Value apply(Op op) const {
        if (arity(op) != 1 || op == Op::pow_const)
            throw std::invalid_argument(std::string("apply: '") + op_name(op) +
                                        "' is not a unary op without a constant");
        return Value(make(op, detail::forward(op, data(), T(0)), n_, nullptr));
    }
    Value relu() const { return apply(Op::relu); }
    Value tanh() const { return apply(Op::tanh); }
    Value sigmoid() const { return apply(Op::sigmoid); }
    Value exp() const { return apply(Op::exp); }
    Value log() const { return apply(Op::log); }
    Value softplus() const { return apply(Op::softplus); }
    Value abs() const { return apply(Op::abs); }

private:
    explicit Value(node_type* n) noexcept : n_(n) { detail::retain(n_); }

    static node_type* make(Op op, T data, node_type* a, node_type* b) {
        return detail::new_node<T>(op, data, a, b);
    }
    static Value binary(Op op, const Value& x, const Value& y) {
        return Value(make(op, detail::forward(op, x.data(), y.data()), x.n_, y.n_));
    }

    node_type* n_;
};

}  // namespace micrograd
