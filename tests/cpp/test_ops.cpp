// tests/cpp/test_ops.cpp: detail::forward and detail::partials for every Op, and op_name.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <micrograd/ops.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using micrograd::Op;

namespace {

constexpr double Inf = std::numeric_limits<double>::infinity();
constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

struct Point {
    Op op;
    double x, y;  // y: second input of a binary op, exponent of pow_const, unused otherwise
};

struct Expected {
    double out, dx, dy;
};

// Textbook values and derivatives, in double, written independently of ops.hpp (and in
// other forms where one exists: tanh via exp, sigmoid' via exp(-x), softplus' as e^x/(1+e^x)).
Expected formula(Op op, double x, double y) {
    const double sq_cosh = std::cosh(x) * std::cosh(x);
    switch (op) {
        case Op::leaf: return {x, 0, 0};
        case Op::add: return {x + y, 1, 1};
        case Op::sub: return {x - y, 1, -1};
        case Op::mul: return {x * y, y, x};
        case Op::div: return {x / y, 1 / y, -x / (y * y)};
        case Op::neg: return {-x, -1, 0};
        case Op::pow_const: return {std::pow(x, y), y * std::pow(x, y - 1), 0};
        case Op::pow:
            return {std::exp(y * std::log(x)), y * std::pow(x, y - 1),
                    std::exp(y * std::log(x)) * std::log(x)};
        case Op::relu: return {x > 0 ? x : 0, x > 0 ? 1.0 : 0.0, 0};
        case Op::tanh: return {(std::exp(2 * x) - 1) / (std::exp(2 * x) + 1), 1 / sq_cosh, 0};
        case Op::sigmoid:
            return {std::exp(x) / (1 + std::exp(x)),
                    std::exp(-x) / ((1 + std::exp(-x)) * (1 + std::exp(-x))), 0};
        case Op::exp: return {std::exp(x), std::exp(x), 0};
        case Op::log: return {std::log(x), 1 / x, 0};
        case Op::softplus: return {std::log(1 + std::exp(x)), std::exp(x) / (1 + std::exp(x)), 0};
        case Op::abs: return {std::sqrt(x * x), x / std::sqrt(x * x), 0};  // away from 0
        case Op::max_shift: return {x > y ? x : y, 0, 0};  // a constant to backward()
        case Op::custom1:
        case Op::custom2: break;  // no forward in the core: their backward is a hook
        case Op::neuron:
        case Op::neuron_relu: break;  // not two-input ops: tested in test_neuron.cpp
    }
    return {NaN, NaN, NaN};
}

// Smooth points of every op (pow only for x > 0, relu away from 0, log for x > 0).
std::vector<Point> smooth_points() {
    std::vector<Point> pts;
    for (Op op : {Op::add, Op::sub, Op::mul, Op::div, Op::max_shift})
        for (auto [x, y] : {std::pair{1.5, -0.75}, {-2.25, 3.5}, {0.3, 0.7}})
            pts.push_back({op, x, y});
    for (auto [x, y] : {std::pair{1.7, 2.3}, {0.4, -1.5}, {2.0, 3.0}, {3.1, 0.5}})
        pts.push_back({Op::pow, x, y});
    for (auto [x, k] : {std::pair{1.7, 2.0}, {-1.3, 3.0}, {0.6, -0.5}, {2.5, 0.5}, {-0.8, -2.0}})
        pts.push_back({Op::pow_const, x, k});
    for (Op op :
         {Op::leaf, Op::neg, Op::relu, Op::tanh, Op::sigmoid, Op::exp, Op::softplus, Op::abs})
        for (double x : {-2.1, -0.3, 0.4, 1.9}) pts.push_back({op, x, 0});
    for (double x : {0.2, 1.0, 3.7}) pts.push_back({Op::log, x, 0});
    return pts;
}

bool is_binary_op(Op op) {
    return op == Op::add || op == Op::sub || op == Op::mul || op == Op::div || op == Op::pow ||
           op == Op::max_shift;
}

// got == want where want is Inf or NaN (matching signs / NaN-ness), else approximately.
template <class T>
bool matches(T got, double want, double eps) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == static_cast<T>(want);
    return static_cast<double>(got) == doctest::Approx(want).epsilon(eps);
}

template <class T>
constexpr double tolerance() {
    return std::is_same_v<T, double> ? 1e-12 : 1e-5;
}

std::string describe(const Point& p) {
    return std::string(micrograd::op_name(p.op)) + "[" + std::to_string(static_cast<int>(p.op)) +
           "] at x=" + std::to_string(p.x) + " y=" + std::to_string(p.y);
}

}  // namespace

TEST_CASE_TEMPLATE("forward and partials agree with the textbook formulas", T, double, float) {
    for (const Point& p : smooth_points()) {
        CAPTURE(describe(p));
        const T x = static_cast<T>(p.x), y = static_cast<T>(p.y);
        const Expected e = formula(p.op, x, y);  // from the inputs as rounded to T
        const T out = micrograd::detail::forward(p.op, x, y);
        const auto d = micrograd::detail::partials(p.op, x, y, out);
        static_assert(std::is_same_v<decltype(out), const T> && std::is_same_v<decltype(d.dx), T>);
        CHECK(matches(out, e.out, tolerance<T>()));
        CHECK(matches(d.dx, e.dx, tolerance<T>()));
        if (is_binary_op(p.op)) CHECK(matches(d.dy, e.dy, tolerance<T>()));
    }
}

TEST_CASE_TEMPLATE("partials agree with central finite differences of forward", T, double, float) {
    // Step ~ cbrt(machine epsilon) balances truncation (h^2) against rounding (eps / h).
    const T h0 = std::cbrt(std::numeric_limits<T>::epsilon());
    const double eps = std::is_same_v<T, double> ? 1e-7 : 2e-3;
    for (const Point& p : smooth_points()) {
        // a leaf has no inputs to differentiate by; max_shift is a constant to backward()
        if (p.op == Op::leaf || p.op == Op::max_shift) continue;
        CAPTURE(describe(p));
        const T x = static_cast<T>(p.x), y = static_cast<T>(p.y);
        const auto f = [&](T a, T b) { return micrograd::detail::forward(p.op, a, b); };
        const auto d = micrograd::detail::partials(p.op, x, y, f(x, y));
        const T hx = h0 * std::max(T(1), std::fabs(x)), hy = h0 * std::max(T(1), std::fabs(y));
        CHECK(double(d.dx) ==
              doctest::Approx((f(x + hx, y) - f(x - hx, y)) / (2 * hx)).epsilon(eps));
        if (is_binary_op(p.op))
            CHECK(double(d.dy) ==
                  doctest::Approx((f(x, y + hy) - f(x, y - hy)) / (2 * hy)).epsilon(eps));
    }
}

TEST_CASE_TEMPLATE("unary ops leave dy at 0, and pow_const treats its exponent as a constant", T,
                   double, float) {
    for (Op op : {Op::neg, Op::pow_const, Op::relu, Op::tanh, Op::sigmoid, Op::exp, Op::log,
                  Op::softplus, Op::abs}) {
        const T out = micrograd::detail::forward(op, T(1.5), T(2));
        CHECK(micrograd::detail::partials(op, T(1.5), T(2), out).dy == T(0));
    }
    const auto leaf = micrograd::detail::partials(Op::leaf, T(3), T(4), T(3));
    CHECK(leaf.dx == T(0));
    CHECK(leaf.dy == T(0));
}

TEST_CASE_TEMPLATE("IEEE edges and the pow rules of ops.hpp", T, double, float) {
    const double log2 = 0.69314718055994531;
    struct Edge {
        Op op;
        double x, y, out, dx, dy;
    };
    const Edge edges[] = {
        // log at and beyond the edge of its domain
        {Op::log, 0.0, 0, -Inf, Inf, 0},
        {Op::log, -0.0, 0, -Inf, -Inf, 0},
        {Op::log, -1.0, 0, NaN, -1, 0},
        // division by zero
        {Op::div, 1.0, 0.0, Inf, Inf, -Inf},
        {Op::div, -1.0, 0.0, -Inf, Inf, Inf},
        {Op::div, 0.0, 0.0, NaN, Inf, NaN},
        // overflow and saturation; softplus must not overflow
        {Op::exp, 1000.0, 0, Inf, Inf, 0},
        {Op::exp, -1000.0, 0, 0, 0, 0},
        {Op::sigmoid, 1000.0, 0, 1, 0, 0},
        {Op::sigmoid, -1000.0, 0, 0, 0, 0},
        {Op::tanh, 1000.0, 0, 1, 0, 0},
        {Op::tanh, -1000.0, 0, -1, 0, 0},
        {Op::softplus, 1000.0, 0, 1000, 1, 0},
        {Op::softplus, -1000.0, 0, 0, 0, 0},
        {Op::softplus, 50.0, 0, 50, 1, 0},
        {Op::softplus, -30.0, 0, 9.3576229688401746e-14, 9.3576229688392989e-14,
         0},  // log1p(e^-30), not 0
        {Op::softplus, 0.0, 0, log2, 0.5, 0},
        // relu: micrograd's 0 if x < 0 else x, derivative (out > 0)
        {Op::relu, 0.0, 0, 0, 0, 0},
        {Op::relu, -3.0, 0, 0, 0, 0},
        {Op::relu, NaN, 0, NaN, 0, 0},  // nan is not < 0, so it passes through
        // abs: d/dx = sign(x), 0 at +-0 and at nan (PyTorch's sgn)
        {Op::abs, 0.0, 0, 0, 0, 0},
        {Op::abs, -0.0, 0, 0, 0, 0},
        {Op::abs, NaN, 0, NaN, 0, 0},
        {Op::abs, -Inf, 0, Inf, -1, 0},
        // pow_const: d/dx x**k is 0 when k == 0, even at x == 0 (not 0 * Inf)
        {Op::pow_const, 0.0, 0.0, 1, 0, 0},
        {Op::pow_const, 5.0, 0.0, 1, 0, 0},
        {Op::pow_const, 0.0, 2.0, 0, 0, 0},
        {Op::pow_const, 0.0, 0.5, 0, Inf, 0},
        {Op::pow_const, 0.0, -1.0, Inf, -Inf, 0},
        {Op::pow_const, -8.0, 1.0 / 3.0, NaN, NaN, 0},
        // pow: dx as pow_const; d/dy x**y is 0 when x == 0 and y >= 0, else x**y * log(x)
        {Op::pow, 0.0, 0.0, 1, 0, 0},
        {Op::pow, 0.0, 2.0, 0, 0, 0},
        {Op::pow, 0.0, -1.0, Inf, -Inf, -Inf},
        {Op::pow, 2.0, 0.0, 1, 0, log2},
        {Op::pow, -2.0, 3.0, -8, 12, NaN},
        {Op::pow, -2.0, 0.5, NaN, NaN, NaN},
    };
    for (const Edge& e : edges) {
        CAPTURE(describe({e.op, e.x, e.y}));
        const T x = static_cast<T>(e.x), y = static_cast<T>(e.y);
        const T out = micrograd::detail::forward(e.op, x, y);
        const auto d = micrograd::detail::partials(e.op, x, y, out);
        CHECK(matches(out, e.out, 1e-6));
        CHECK(matches(d.dx, e.dx, 1e-6));
        CHECK(matches(d.dy, e.dy, 1e-6));
    }
}

TEST_CASE("op_name gives micrograd's labels") {
    using micrograd::op_name;
    const std::pair<Op, std::string> labels[] = {
        {Op::leaf, ""},           {Op::add, "+"},
        {Op::sub, "-"},           {Op::mul, "*"},
        {Op::div, "/"},           {Op::neg, "neg"},
        {Op::pow_const, "**"},    {Op::pow, "**"},
        {Op::relu, "ReLU"},       {Op::tanh, "tanh"},
        {Op::sigmoid, "sigmoid"}, {Op::exp, "exp"},
        {Op::log, "log"},         {Op::softplus, "softplus"},
        {Op::abs, "abs"},         {Op::max_shift, "max"},
        {Op::custom1, "custom"},  {Op::custom2, "custom"},
        {Op::neuron, "+"},        {Op::neuron_relu, "ReLU"},
    };
    for (const auto& [op, label] : labels) CHECK(op_name(op) == label);
    CHECK(op_name(static_cast<Op>(200)) == std::string("?"));
}
