// micrograd/ops.hpp: the op table: one row per op (name, arity, value, local derivatives).
#pragma once

#include <cmath>
#include <cstdint>

namespace micrograd {

// d out/dx and d out/dy at (x, y). backward() multiplies them by out.grad, so
// `x.grad += dx * out.grad` reproduces micrograd's update bit for bit.
template <class T>
struct Partials {
    T dx;
    T dy;  // binary ops only
};

// One struct per op. `name` is micrograd's label (`_op`) where micrograd has the op; `arity`
// counts the inputs (a leaf has none; a fused neuron has `many`, kept in rows: fused_node.hpp).
// forward(x, y) is the value and partials(x, y, out) the local derivatives, side by side:
// unary ops ignore y, except pow_const, whose y is the exponent kept in the node
// (`constant`). `method` names the Python method of a unary op (value.cpp binds one per
// row that has it) and `doc` documents it. Results at the edges of a domain are IEEE's
// (log(0) = -inf, log(-1) = nan, x/0 = inf), as in PyTorch.
namespace op {

// clang-format off: the rows keep each op's value and derivatives on a line each (clang-format
// would spread a row over four times the lines).
inline constexpr int many = -1;

struct Defaults {
    static constexpr const char* method = nullptr;
    static constexpr const char* doc = nullptr;
    static constexpr bool constant = false;
    static constexpr bool gradient = true;  // backward() propagates through it
    static constexpr bool custom = false;   // its backward is Hooks::custom_backward
};

struct Leaf : Defaults {
    static constexpr const char* name = "";
    static constexpr int arity = 0;
};

struct Add : Defaults {
    static constexpr const char* name = "+";
    static constexpr int arity = 2;
    template <class T>
    static T forward(T x, T y) noexcept {
        return x + y;
    }
    template <class T>
    static Partials<T> partials(T, T, T) noexcept {
        return {T(1), T(1)};
    }
};

struct Sub : Defaults {
    static constexpr const char* name = "-";
    static constexpr int arity = 2;
    template <class T>
    static T forward(T x, T y) noexcept {
        return x - y;
    }
    template <class T>
    static Partials<T> partials(T, T, T) noexcept {
        return {T(1), T(-1)};
    }
};

struct Mul : Defaults {
    static constexpr const char* name = "*";
    static constexpr int arity = 2;
    template <class T>
    static T forward(T x, T y) noexcept {
        return x * y;
    }
    template <class T>
    static Partials<T> partials(T x, T y, T) noexcept {
        return {y, x};
    }
};

struct Div : Defaults {
    static constexpr const char* name = "/";
    static constexpr int arity = 2;
    template <class T>
    static T forward(T x, T y) noexcept {
        return x / y;
    }
    template <class T>
    static Partials<T> partials(T x, T y, T) noexcept {
        return {T(1) / y, -x / (y * y)};
    }
};

struct Neg : Defaults {
    static constexpr const char* name = "neg";
    static constexpr int arity = 1;
    template <class T>
    static T forward(T x, T) noexcept {
        return -x;
    }
    template <class T>
    static Partials<T> partials(T, T, T) noexcept {
        return {T(-1), T(0)};
    }
};

// x ** k for a constant k: "**" here; the Python module appends k as micrograd does ("**2").
struct PowConst : Defaults {
    static constexpr const char* name = "**";
    static constexpr int arity = 1;
    static constexpr bool constant = true;
    template <class T>
    static T forward(T x, T k) noexcept {
        return std::pow(x, k);
    }
    // k * x**(k-1), taken as 0 when k == 0 (PyTorch; avoids 0 * inf)
    template <class T>
    static Partials<T> partials(T x, T k, T) noexcept {
        return {k == 0 ? T(0) : k * std::pow(x, k - 1), T(0)};
    }
};

// x ** y with both in the graph.
struct Pow : Defaults {
    static constexpr const char* name = "**";
    static constexpr int arity = 2;
    template <class T>
    static T forward(T x, T y) noexcept {
        return std::pow(x, y);
    }
    // d/dy = x**y * log(x), taken as 0 when x == 0 and y >= 0 (PyTorch)
    template <class T>
    static Partials<T> partials(T x, T y, T out) noexcept {
        return {PowConst::partials(x, y, out).dx, (x == 0 && y >= 0) ? T(0) : out * std::log(x)};
    }
};

struct Relu : Defaults {
    static constexpr const char* name = "ReLU";
    static constexpr int arity = 1;
    static constexpr const char* method = "relu";
    static constexpr const char* doc =
        "max(0, x) as micrograd: 0 if x < 0 else x; d/dx = 1 where the result is > 0, else 0.";
    template <class T>
    static T forward(T x, T) noexcept {
        return x < 0 ? T(0) : x;
    }
    // micrograd: (out.data > 0) * out.grad
    template <class T>
    static Partials<T> partials(T, T, T out) noexcept {
        return {T(out > 0), T(0)};
    }
};

struct Tanh : Defaults {
    static constexpr const char* name = "tanh";
    static constexpr int arity = 1;
    static constexpr const char* method = "tanh";
    static constexpr const char* doc = "tanh(x); d/dx = 1 - tanh(x)**2.";
    template <class T>
    static T forward(T x, T) noexcept {
        return std::tanh(x);
    }
    template <class T>
    static Partials<T> partials(T, T, T out) noexcept {
        return {T(1) - out * out, T(0)};
    }
};

struct Sigmoid : Defaults {
    static constexpr const char* name = "sigmoid";
    static constexpr int arity = 1;
    static constexpr const char* method = "sigmoid";
    static constexpr const char* doc = "1 / (1 + exp(-x)); d/dx = sigmoid(x) * (1 - sigmoid(x)).";
    template <class T>
    static T forward(T x, T) noexcept {
        return T(1) / (T(1) + std::exp(-x));
    }
    template <class T>
    static Partials<T> partials(T, T, T out) noexcept {
        return {out * (T(1) - out), T(0)};
    }
};

struct Exp : Defaults {
    static constexpr const char* name = "exp";
    static constexpr int arity = 1;
    static constexpr const char* method = "exp";
    static constexpr const char* doc = "e**x (inf on overflow); d/dx = e**x.";
    template <class T>
    static T forward(T x, T) noexcept {
        return std::exp(x);
    }
    template <class T>
    static Partials<T> partials(T, T, T out) noexcept {
        return {out, T(0)};
    }
};

struct Log : Defaults {
    static constexpr const char* name = "log";
    static constexpr int arity = 1;
    static constexpr const char* method = "log";
    static constexpr const char* doc =
        "Natural log: log(0) = -inf, log(x < 0) = nan (IEEE, as PyTorch); d/dx = 1/x.";
    template <class T>
    static T forward(T x, T) noexcept {
        return std::log(x);
    }
    template <class T>
    static Partials<T> partials(T x, T, T) noexcept {
        return {T(1) / x, T(0)};
    }
};

struct Softplus : Defaults {
    static constexpr const char* name = "softplus";
    static constexpr int arity = 1;
    static constexpr const char* method = "softplus";
    static constexpr const char* doc =
        "log(1 + exp(x)), without overflow for large x; d/dx = sigmoid(x).";
    template <class T>
    static T forward(T x, T) noexcept {
        return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    }
    template <class T>
    static Partials<T> partials(T x, T y, T) noexcept {
        return {Sigmoid::forward(x, y), T(0)};
    }
};

struct Abs : Defaults {
    static constexpr const char* name = "abs";
    static constexpr int arity = 1;
    static constexpr const char* method = "abs";
    static constexpr const char* doc =
        "|x| (also abs(v)); d/dx = sign(x), 0 at 0 and at nan (as PyTorch).";
    template <class T>
    static T forward(T x, T) noexcept {
        return std::fabs(x);
    }
    template <class T>
    static Partials<T> partials(T x, T, T) noexcept {
        return {x > 0 ? T(1) : x < 0 ? T(-1) : T(0), T(0)};
    }
};

// max(x, y) as a constant to backward(): the shift that keeps a logsumexp from overflowing
// (losses.hpp). A node rather than a number, so that a replayed graph recomputes it.
struct MaxShift : Defaults {
    static constexpr const char* name = "max";
    static constexpr int arity = 2;
    static constexpr bool gradient = false;
    template <class T>
    static T forward(T x, T y) noexcept {
        return y > x ? y : x;
    }
    template <class T>
    static Partials<T> partials(T, T, T) noexcept {
        return {T(0), T(0)};
    }
};

// A node made outside the core from one or two inputs, with its data given and its
// backward step left to Hooks::custom_backward: the Python module's Value(data,
// (x, y), 'op') with a Python _backward (micrograd's custom ops). No forward: a Graph
// cannot replay it.
struct Custom1 : Defaults {
    static constexpr const char* name = "custom";
    static constexpr int arity = 1;
    static constexpr bool custom = true;
};

struct Custom2 : Defaults {
    static constexpr const char* name = "custom";
    static constexpr int arity = 2;
    static constexpr bool custom = true;
};

// A whole neuron in one node: micrograd's graph for sum((wi*xi ...), b) (Neuron) or its
// relu (NeuronRelu), kept as arrays instead of 2n or 2n + 1 nodes (fused_node.hpp). It reports
// the op of that graph's last node ('+' or 'ReLU'); expand() turns it into that graph.
struct Neuron : Defaults {
    static constexpr const char* name = "+";
    static constexpr int arity = many;
};

struct NeuronRelu : Defaults {
    static constexpr const char* name = "ReLU";
    static constexpr int arity = many;
};

// clang-format on
}  // namespace op

// Every op: X(enumerator, row). The order is the enum's.
// clang-format off
#define MICROGRAD_OPS(X)                                                                    \
    X(leaf, Leaf) X(add, Add) X(sub, Sub) X(mul, Mul) X(div, Div) X(neg, Neg)               \
    X(pow_const, PowConst) X(pow, Pow) X(relu, Relu) X(tanh, Tanh) X(sigmoid, Sigmoid)      \
    X(exp, Exp) X(log, Log) X(softplus, Softplus) X(abs, Abs) X(max_shift, MaxShift)        \
    X(custom1, Custom1) X(custom2, Custom2) X(neuron, Neuron) X(neuron_relu, NeuronRelu)
// clang-format on

// The operation that produced a node.
enum class Op : std::uint8_t {
#define MICROGRAD_ENUM(e, row) e,
    MICROGRAD_OPS(MICROGRAD_ENUM)
#undef MICROGRAD_ENUM
};

// f(row{}) for op's row: the one dispatch from an op code to its row. `otherwise` is
// returned for a code that names no op.
template <class F, class R>
constexpr R visit(Op code, F&& f, R otherwise) {
    switch (code) {
#define MICROGRAD_CASE(e, row) \
    case Op::e: return f(op::row{});
        MICROGRAD_OPS(MICROGRAD_CASE)
#undef MICROGRAD_CASE
    }
    return otherwise;
}

// f(code, row{}) for every op, in the enum's order.
template <class F>
void for_each_op(F&& f) {
#define MICROGRAD_EACH(e, row) f(Op::e, op::row{});
    MICROGRAD_OPS(MICROGRAD_EACH)
#undef MICROGRAD_EACH
}

// micrograd's label of an op ('?' for a code that names no op).
inline constexpr const char* op_name(Op code) noexcept {
    return visit(
        code, [](auto row) { return decltype(row)::name; }, "?");
}

inline constexpr int arity(Op code) noexcept {
    return visit(
        code, [](auto row) { return decltype(row)::arity; }, 0);
}

inline constexpr bool is_fused(Op code) noexcept {
    return arity(code) == op::many;
}

inline constexpr bool is_custom(Op code) noexcept {
    return visit(
        code, [](auto row) { return decltype(row)::custom; }, false);
}

namespace detail {

inline constexpr bool is_binary(Op code) noexcept {
    return arity(code) == 2;
}

// Calls f(row{}) for the row of code, only for ops with a forward (arity 1 or 2, not
// custom), else returns otherwise.
template <class F, class R>
R visit_computed(Op code, F&& f, R otherwise) {
    return visit(
        code,
        [&](auto row) -> R {
            constexpr int n = decltype(row)::arity;
            if constexpr ((n == 1 || n == 2) && !decltype(row)::custom)
                return f(row);
            else
                return otherwise;
        },
        otherwise);
}

// out = f(x, y) for the ops that compute one (a leaf or a fused neuron gives back x).
template <class T>
T forward(Op code, T x, T y) noexcept {
    return visit_computed(
        code, [&](auto row) { return decltype(row)::forward(x, y); }, x);
}

template <class T>
Partials<T> partials(Op code, T x, T y, T out) noexcept {
    return visit_computed(
        code, [&](auto row) { return decltype(row)::partials(x, y, out); }, Partials<T>{0, 0});
}

}  // namespace detail
}  // namespace micrograd
