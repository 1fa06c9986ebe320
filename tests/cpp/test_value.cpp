// tests/cpp/test_value.cpp: Value<T> handles: operators, refcounting, micrograd's own tests,
// precision.
#include <doctest/doctest.h>

#include <cmath>
#include <micrograd.hpp>
#include <type_traits>
#include <utility>

#include "helpers.hpp"

using micrograd::Op;
using micrograd::Value;

namespace {

// Tolerance for results of a few dozen operations: micrograd's 1e-6 for double.
template <class T>
doctest::Approx near(double expected) {
    return doctest::Approx(expected).epsilon(std::is_same_v<T, double> ? 1e-12 : 1e-5).scale(0);
}

}  // namespace

TEST_CASE_TEMPLATE("operators take numbers on either side", T, double, float) {
    const Value<T> a = 3;
    CHECK((a + 2).data() == 5);
    CHECK((2 + a).data() == 5);
    CHECK((a - 2).data() == 1);
    CHECK((2 - a).data() == -1);
    CHECK((a * 4).data() == 12);
    CHECK((4.0 * a).data() == 12);
    CHECK((a / 2).data() == T(1.5));
    CHECK((6 / a).data() == 2);
    CHECK((-a).data() == -3);
    CHECK(pow(a, 2).data() == 9);
    CHECK(pow(2, a).data() == 8);
    CHECK(a.pow(2).data() == 9);

    CHECK((a + 2).op() == Op::add);
    CHECK((2 - a).op() == Op::sub);
    CHECK((a * a).op() == Op::mul);
    CHECK((6 / a).op() == Op::div);
    CHECK((-a).op() == Op::neg);
    CHECK(pow(a, 2).op() == Op::pow);
    CHECK(a.op() == Op::leaf);

    // d/da of (2 - a)(a / 4) + 6 / a + 2^a + a^2 at a = 3: (2 - 2a)/4 - 6/a^2 + 2^a ln 2 + 2a
    Value<T> x = 3;
    Value<T> f = (2 - x) * (x / 4) + 6 / x + pow(2, x) + pow(x, 2);
    f.backward();
    CHECK(f.data() == near<T>(-0.75 + 2 + 8 + 9));
    CHECK(x.grad() == near<T>(-1 - 6.0 / 9 + 8 * std::log(2.0) + 6));
}

TEST_CASE_TEMPLATE("unary methods and pow with a constant exponent", T, double, float) {
    const Value<T> a = 0.5;
    CHECK(a.relu().op() == Op::relu);
    CHECK((-a).relu().data() == 0);
    CHECK(a.tanh().data() == near<T>(std::tanh(0.5)));
    CHECK(a.sigmoid().data() == near<T>(1 / (1 + std::exp(-0.5))));
    CHECK(a.exp().data() == near<T>(std::exp(0.5)));
    CHECK(a.log().data() == near<T>(std::log(0.5)));
    CHECK(a.softplus().data() == near<T>(std::log(1 + std::exp(0.5))));

    const Value<T> sq = a.pow(2), root = a.pow(0.5);
    CHECK(sq.op() == Op::pow_const);
    CHECK(sq.exponent() == 2);
    CHECK(sq.exponent_is_integer());           // micrograd labels it "**2"
    CHECK(!a.pow(2.0).exponent_is_integer());  // ... and this "**2.0"
    CHECK(root.exponent() == T(0.5));
    CHECK(root.data() == near<T>(std::sqrt(0.5)));
}

TEST_CASE_TEMPLATE("inputs() are micrograd's _prev, in order", T, double, float) {
    const Value<T> a = 2, b = 3;
    CHECK(a.inputs().empty());
    const auto unary = a.relu().inputs();
    REQUIRE(unary.size() == 1);
    CHECK(unary[0].node() == a.node());
    CHECK(a.pow(2).inputs().size() == 1);  // the exponent is no input
    const auto binary = (a - b).inputs();
    REQUIRE(binary.size() == 2);
    CHECK(binary[0].node() == a.node());
    CHECK(binary[1].node() == b.node());
}

TEST_CASE_TEMPLATE("copies share the node; the arena gets every node back when handles die", T,
                   double, float) {
    const std::size_t base = live<T>();
    {
        Value<T> a = 2;
        CHECK(live<T>() == base + 1);
        Value<T> b = a;
        CHECK(b.node() == a.node());
        CHECK(a.node()->refs == 2);
        CHECK(live<T>() == base + 1);
        b.set_data(5);
        CHECK(a.data() == 5);

        Value<T> c = std::move(b);  // moves the reference, no new node
        CHECK(c.node() == a.node());
        CHECK(a.node()->refs == 2);
        Value<T>& alias = c;
        c = alias;  // self-assignment keeps the reference
        CHECK(a.node()->refs == 2);
        const Value<T> d = Value<T>::from_node(a.node());
        CHECK(a.node()->refs == 3);

        Value<T> y;  // a leaf holding 0
        CHECK(y.data() == 0);
        CHECK(live<T>() == base + 2);
        {
            const Value<T> t = a * a + 1;  // mul, constant 1, add
            CHECK(live<T>() == base + 5);
            y = t;  // drops the old leaf
            CHECK(live<T>() == base + 4);
        }
        // The add node keeps its inputs alive although no handle names them.
        CHECK(live<T>() == base + 4);
        y.backward();
        CHECK(y.data() == 26);
        CHECK(a.grad() == 10);
        y = Value<T>(7);  // frees add, mul and the constant, not a
        CHECK(live<T>() == base + 2);
        CHECK(a.node()->refs == 3);
    }
    CHECK(live<T>() == base);
}

// micrograd's test_engine.py::test_sanity_check; expected values from PyTorch.
TEST_CASE_TEMPLATE("micrograd test_sanity_check", T, double, float) {
    const std::size_t base = live<T>();
    {
        Value<T> x = -4.0;
        Value<T> z = 2 * x + 2 + x;
        Value<T> q = z.relu() + z * x;
        Value<T> h = (z * z).relu();
        Value<T> y = h + q + q * x;
        y.backward();
        CHECK(y.data() == -20.0);
        CHECK(x.grad() == 46.0);
    }
    CHECK(live<T>() == base);
}

// micrograd's test_engine.py::test_more_ops; expected values from PyTorch (tolerance 1e-6).
TEST_CASE_TEMPLATE("micrograd test_more_ops", T, double, float) {
    const double tol = std::is_same_v<T, double> ? 1e-6 : 1e-3;
    Value<T> a = -4.0;
    Value<T> b = 2.0;
    Value<T> c = a + b;
    Value<T> d = a * b + b.pow(3);
    c = c + (c + 1);
    c = c + (1 + c + (-a));
    d = d + (d * 2 + (b + a).relu());
    d = d + (3 * d + (b - a).relu());
    Value<T> e = c - d;
    Value<T> f = e.pow(2);
    Value<T> g = f / 2.0;
    g = g + 10.0 / f;
    g.backward();
    CHECK(std::fabs(g.data() - 24.70408163265306) < tol);
    CHECK(std::fabs(a.grad() - 138.83381924198252) < tol);
    CHECK(std::fabs(b.grad() - 645.5772594752186) < tol);
}

TEST_CASE("Value<float> computes in float, Value<double> in double") {
    static_assert(std::is_same_v<decltype(Value<float>().data()), float>);
    static_assert(std::is_same_v<decltype(Value<float>().grad()), float>);
    CHECK((Value<float>(1e-8f) + 1.0f).data() == 1.0f);
    CHECK((Value<double>(1e-8) + 1.0).data() != 1.0);
    CHECK((Value<float>(16777216.0f) + 1.0f).data() == 16777216.0f);  // 2^24 + 1 rounds back

    // Gradients too: 1 + 1e-8 is 1 in float, so d(x * (1 + 1e-8))/dx is exactly 1.
    Value<float> x = 3.0f;
    Value<float> y = x * (Value<float>(1.0f) + 1e-8f);
    y.backward();
    CHECK(x.grad() == 1.0f);
}

TEST_CASE("nodes are small") {
    CHECK(sizeof(micrograd::Node<double>) <= 56);
    CHECK(sizeof(micrograd::Node<float>) <= sizeof(micrograd::Node<double>));
    CHECK(micrograd::arena_stats<double>().node_size == sizeof(micrograd::Node<double>));
    CHECK(micrograd::arena_stats<float>().node_size == sizeof(micrograd::Node<float>));
}
