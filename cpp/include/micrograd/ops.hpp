// micrograd/ops.hpp: the op table: each op's value and local derivatives, side by side.
#pragma once

#include <cmath>

#include "node.hpp"

namespace micrograd {

// Name of an op as micrograd labels it (`_op`) where micrograd has the op. pow_const is
// "**" here; the Python module appends the exponent as micrograd does ("**2", "**2.0").
inline const char* op_name(Op op) noexcept {
    switch (op) {
        case Op::leaf: return "";
        case Op::add: return "+";
        case Op::sub: return "-";
        case Op::mul: return "*";
        case Op::div: return "/";
        case Op::neg: return "neg";
        case Op::pow_const: return "**";
        case Op::pow: return "**";
        case Op::relu: return "ReLU";
        case Op::tanh: return "tanh";
        case Op::sigmoid: return "sigmoid";
        case Op::exp: return "exp";
        case Op::log: return "log";
        case Op::softplus: return "softplus";
        case Op::neuron: return "+";
        case Op::neuron_relu: return "ReLU";
    }
    return "?";
}

namespace detail {

// out = f(x, y). For unary ops y is unused, except pow_const where y is the exponent.
// Results at the edges of a domain are IEEE's (log(0) = -inf, log(-1) = nan, x/0 = inf),
// as in PyTorch.
template <class T>
T forward(Op op, T x, T y) noexcept {
    switch (op) {
        case Op::leaf: return x;
        case Op::add: return x + y;
        case Op::sub: return x - y;
        case Op::mul: return x * y;
        case Op::div: return x / y;
        case Op::neg: return -x;
        case Op::pow_const:
        case Op::pow: return std::pow(x, y);
        case Op::relu: return x < 0 ? T(0) : x;  // micrograd: 0 if x < 0 else x
        case Op::tanh: return std::tanh(x);
        case Op::sigmoid: return T(1) / (T(1) + std::exp(-x));
        case Op::exp: return std::exp(x);
        case Op::log: return std::log(x);
        case Op::softplus: return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
        case Op::neuron:
        case Op::neuron_relu: break;  // many inputs: fused.hpp
    }
    return x;
}

template <class T>
struct Partials {
    T dx;  // d out / dx
    T dy;  // d out / dy (binary ops only)
};

// Local derivatives at (x, y) with out = forward(op, x, y). backward() multiplies them
// by out.grad, so `x.grad += dx * out.grad` reproduces micrograd's update bit for bit.
template <class T>
Partials<T> partials(Op op, T x, T y, T out) noexcept {
    switch (op) {
        case Op::leaf: return {T(0), T(0)};
        case Op::add: return {T(1), T(1)};
        case Op::sub: return {T(1), T(-1)};
        case Op::mul: return {y, x};
        case Op::div: return {T(1) / y, -x / (y * y)};
        case Op::neg: return {T(-1), T(0)};
        // d/dx x**y = y * x**(y-1), taken as 0 when y == 0 (PyTorch; avoids 0 * inf)
        case Op::pow_const: return {y == 0 ? T(0) : y * std::pow(x, y - 1), T(0)};
        // d/dy x**y = x**y * log(x), taken as 0 when x == 0 and y >= 0 (PyTorch)
        case Op::pow:
            return {y == 0 ? T(0) : y * std::pow(x, y - 1),
                    (x == 0 && y >= 0) ? T(0) : out * std::log(x)};
        case Op::relu: return {T(out > 0), T(0)};  // micrograd: (out.data > 0) * out.grad
        case Op::tanh: return {T(1) - out * out, T(0)};
        case Op::sigmoid: return {out * (T(1) - out), T(0)};
        case Op::exp: return {out, T(0)};
        case Op::log: return {T(1) / x, T(0)};
        case Op::softplus: return {T(1) / (T(1) + std::exp(-x)), T(0)};  // sigmoid(x)
        case Op::neuron:
        case Op::neuron_relu: break;  // many inputs: backward.hpp
    }
    return {T(0), T(0)};
}

}  // namespace detail
}  // namespace micrograd
