// tests/cpp/test_backward.cpp: backward() semantics: seeding, accumulation, reach, depth, visit
// marks.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <micrograd.hpp>
#include <vector>

#include "helpers.hpp"

using micrograd::Value;

namespace {

// Whether backward() left per-node state behind (its consumer count).
template <class T>
bool visited(const Value<T>& v) {
    return v.node()->pending != 0;
}

}  // namespace

TEST_CASE_TEMPLATE("backward sets the root's grad to 1, whatever it held", T, double, float) {
    Value<T> a = 3, b = -2;
    Value<T> y = a * b;
    y.set_grad(5);
    y.backward();
    CHECK(y.grad() == 1);
    CHECK(a.grad() == -2);
    CHECK(b.grad() == 3);

    Value<T> leaf = 7;  // a leaf root: only its own grad changes
    leaf.set_grad(-4);
    leaf.backward();
    CHECK(leaf.grad() == 1);
}

TEST_CASE_TEMPLATE("shared subexpressions get one contribution per path", T, double, float) {
    SUBCASE("a node used twice by one op") {
        Value<T> x = 3;
        Value<T> s = x * x;
        Value<T> y = s + s;  // y = 2x^2
        y.backward();
        CHECK(s.grad() == 2);
        CHECK(x.grad() == 12);  // 4x
    }
    SUBCASE("a diamond") {
        Value<T> x = 3;
        Value<T> a = x * 2, b = x * 3;
        Value<T> y = a * b;  // y = 6x^2
        y.backward();
        CHECK(a.grad() == 9);
        CHECK(b.grad() == 6);
        CHECK(x.grad() == 36);  // 12x
    }
    SUBCASE("60 stacked diamonds: 2^60 paths, each node still processed once") {
        Value<T> x = 1.5;
        Value<T> v = x;
        for (int i = 0; i < 60; ++i) v = v + v;  // would take 2^60 steps if visited per path
        v.backward();
        CHECK(v.data() == std::ldexp(T(1.5), 60));
        CHECK(x.grad() == std::ldexp(T(1), 60));
    }
}

TEST_CASE_TEMPLATE("calling backward twice accumulates as micrograd does", T, double, float) {
    Value<T> x = 1;
    Value<T> y = 2 * x;
    Value<T> z = 3 * y;
    z.backward();
    CHECK(y.grad() == 3);
    CHECK(x.grad() == 6);
    z.backward();  // z.grad is reset to 1, everything below it accumulates
    CHECK(z.grad() == 1);
    CHECK(y.grad() == 6);
    CHECK(x.grad() == 18);
}

TEST_CASE_TEMPLATE("only nodes reachable from the root are touched", T, double, float) {
    Value<T> x = 2, w = 5, other = 9;
    Value<T> u = w * x;  // consumes x but is not an input of y
    Value<T> y = x * 3;
    Value<T> z = y * 4;  // consumes the root
    y.backward();
    CHECK(x.grad() == 3);
    CHECK(u.grad() == 0);
    CHECK(w.grad() == 0);
    CHECK(z.grad() == 0);
    CHECK(other.grad() == 0);

    u.backward();  // now from the other root: adds into x
    CHECK(u.grad() == 1);
    CHECK(w.grad() == 2);
    CHECK(x.grad() == 3 + 5);
    CHECK(y.grad() == 1);  // not reachable from u
}

TEST_CASE_TEMPLATE(
    "visit marks are cleared, so a second backward from another root sees shared nodes", T, double,
    float) {
    Value<T> x = 3;
    Value<T> s = x * x;
    Value<T> k = x.pow(2);
    Value<T> y1 = s + k;
    Value<T> y2 = s * 2;
    y1.backward();
    CHECK(s.grad() == 1);
    CHECK(x.grad() == 12);  // 2x + 2x
    for (const Value<T>* v : {&x, &s, &k, &y1, &y2}) CHECK(!visited(*v));
    CHECK(k.exponent_is_integer());  // other flag bits survive

    y2.backward();  // s must be swept again; like micrograd it passes on its accumulated grad
    CHECK(s.grad() == 1 + 2);
    CHECK(x.grad() == 12 + 2 * 3 * (1 + 2));
    CHECK(k.grad() == 1);  // not reachable from y2
    for (const Value<T>* v : {&x, &s, &k, &y1, &y2}) CHECK(!visited(*v));
}

TEST_CASE("a chain of 10,000,000 nodes builds, backpropagates and frees without recursion") {
    // x_{i+1} = x_i * c + d, 5,000,000 steps of 2 nodes. With c = 1 + 2^-22 (c - 1 exact):
    //   x_n = c^n x_0 + d (c^n - 1) / (c - 1),  dx_n/dx_0 = c^n,  dx_n/dd = (c^n - 1) / (c - 1).
    constexpr long steps = 5'000'000;
    const double c_val = 1 + std::ldexp(1.0, -22), d_val = 0.25, x0_val = 0.5;
    const double cn = std::pow(c_val, double(steps)), geometric = (cn - 1) / (c_val - 1);

    const std::size_t base = live<double>();
    {
        Value<double> x0 = x0_val, c = c_val, d = d_val;
        Value<double> x = x0;
        for (long i = 0; i < steps; ++i) x = x * c + d;
        CHECK(live<double>() == base + 3 + 2 * steps);
        CHECK(x.data() == doctest::Approx(cn * x0_val + d_val * geometric).epsilon(1e-8));

        x.backward();
        CHECK(x0.grad() == doctest::Approx(cn).epsilon(1e-8));
        CHECK(d.grad() == doctest::Approx(geometric).epsilon(1e-8));

        x = Value<double>();  // drops the whole chain through its head
        CHECK(live<double>() == base + 4);
    }
    CHECK(live<double>() == base);
}

namespace {
int polls_left = 0;
bool interrupt_after_polls() noexcept {
    return --polls_left < 0;
}
}  // namespace

TEST_CASE("an interrupted backward leaves no counts behind and can be run again") {
    // x_{i+1} = x_i * c + x_i: every x has two consumers (a diamond per step).
    constexpr int steps = 300'000;  // 600,000 interior nodes: 9 polls per walk
    Value<double> x0 = 0.5;
    Value<double> x = x0;
    std::vector<Value<double>> chain;  // every interior node
    for (int i = 0; i < steps; ++i) {
        Value<double> m = x * Value<double>(1e-6);
        x = m + x;
        chain.push_back(m);
        chain.push_back(x);
    }
    auto& hooks = micrograd::hooks<double>();
    for (int polls : {0, 5, 12}) {  // stop in the counting walk (0, 5), the propagating one
        polls_left = polls;
        hooks.interrupted = &interrupt_after_polls;
        CHECK_THROWS_AS(x.backward(), micrograd::Interrupted);
        hooks.interrupted = nullptr;
        bool clean = true;
        for (const auto& v : chain) clean = clean && v.node()->pending == 0;
        CHECK(clean);
    }
    // The counts are right again: with the partial grads cleared, a backward from a new
    // root on top gives the derivative (1 + 1e-6)^steps of the chain times 1.
    for (auto& v : chain) v.set_grad(0);
    x0.set_grad(0);
    Value<double> y = x + 0.0;
    y.backward();
    CHECK(x0.grad() == doctest::Approx(std::pow(1 + 1e-6, steps)).epsilon(1e-9));
}

namespace {
std::vector<const void*> custom_calls;
void record_custom(micrograd::Node<double>* n) {
    custom_calls.push_back(n);
    n->a->grad += 2 * n->grad;  // as if out = 2 * x
}
}  // namespace

TEST_CASE("a custom node's backward is Hooks::custom_backward, in backward()'s order") {
    auto& hooks = micrograd::hooks<double>();
    hooks.custom_backward = &record_custom;
    const micrograd::Value<double> x = 1.5;
    const micrograd::Value<double> y = micrograd::Value<double>::custom(3.0, &x, nullptr);
    const micrograd::Value<double> z = y * y;
    custom_calls.clear();
    z.node()->grad = 0;
    micrograd::backward(z.node());
    CHECK(custom_calls == std::vector<const void*>{y.node()});
    CHECK(y.grad() == 6.0);              // 2 * y
    CHECK(x.grad() == 12.0);             // the hook's 2 * y.grad
    micrograd::backward_step(y.node());  // by hand, as micrograd's y._backward()
    CHECK(x.grad() == 24.0);
    CHECK_THROWS_AS(micrograd::Graph<double>{z}, micrograd::Unreplayable);
    hooks.custom_backward = nullptr;
}
