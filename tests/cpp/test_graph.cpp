// tests/cpp/test_graph.cpp: Graph<T> replays bit for bit what rebuilding the graph gives.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <micrograd.hpp>
#include <random>
#include <stdexcept>
#include <vector>

#include "helpers.hpp"

using micrograd::Graph;
using micrograd::Value;

namespace {

// Bit equality (nan equals nan of any payload).
template <class T>
bool same(T a, T b) {
    return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(T)) == 0;
}

// An expression over every op, with shared subexpressions, from the leaves x[0..3].
template <class T>
std::vector<Value<T>> expression(const std::vector<Value<T>>& x) {
    const Value<T> s = x[0] * x[1] + x[2];                     // shared below
    const Value<T> t = (s - x[3]).tanh() * s / (x[1] + T(3));  // a constant leaf
    const Value<T> u = pow(x[2].abs() + T(0.5), x[0]) + s.pow(2) - (-t).exp().log();
    const Value<T> v = x[3].sigmoid().softplus() * t.relu() + u.pow(0.5);
    const Value<T>* w[] = {&x[0], &x[1], &x[2]};
    micrograd::Operand<T> in[] = {{&s, T(0)}, {&t, T(0)}, {nullptr, T(0.25)}};
    const Value<T> n = micrograd::neuron(w, x[3], in, 3, true);  // a fused neuron
    return {s, t, u, v, n, v * n + s};
}

template <class T>
std::vector<Value<T>> leaves(const std::vector<T>& data) {
    return {data.begin(), data.end()};
}

}  // namespace

TEST_CASE_TEMPLATE("replay equals an eager rebuild, data and grads, bit for bit", T, double,
                   float) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> uniform(-2, 2);
    const std::vector<Value<T>> x = leaves<T>({0.5, -1.25, 2.0, 0.75});
    const std::vector<Value<T>> nodes = expression(x);
    Graph<T> g(nodes.back(), {x[0], x[1], x[2], x[3]});
    CHECK(g.check() == T(0));
    for (int round = 0; round < 20; ++round) {
        std::vector<T> data(4);
        for (T& d : data) d = static_cast<T>(uniform(rng));
        g.set_inputs(data.data(), data.size());
        for (const Value<T>& xi : x) xi.node()->grad = T(0.125);  // leaves accumulate
        g.forward();
        g.backward();
        if (round % 2) g.backward();  // twice: leaves accumulate twice, interior restarts

        const std::vector<Value<T>> y = leaves<T>(data);
        for (const Value<T>& yi : y) yi.node()->grad = T(0.125);
        const std::vector<Value<T>> want = expression(y);
        micrograd::backward(want.back().node());
        if (round % 2) micrograd::backward(expression(y).back().node());  // a fresh graph
        for (std::size_t k = 0; k < nodes.size(); ++k) {
            CAPTURE(k);
            CHECK(same(nodes[k].data(), want[k].data()));
            CHECK(same(nodes[k].grad(), want[k].grad()));
        }
        for (std::size_t k = 0; k < x.size(); ++k) {
            CAPTURE(k);
            CHECK(same(x[k].grad(), y[k].grad()));
        }
        CHECK(g.check() == T(0));
    }
}

// A model as nn lays it out: per layer, per neuron, its weights then its bias (leaves), the
// neurons of a layer sharing one row of inputs. Layers of 16, 8, 4 and 3 neurons and 1: a
// replay computes them in groups of 16, 8, 4, 2 and 1.
template <class T>
struct Mlp {
    std::vector<std::size_t> sizes{3, 16, 8, 4, 3, 1};
    std::vector<Value<T>> params;
    std::vector<std::vector<micrograd::NodeRow<T>>> weights;
    std::vector<std::vector<const Value<T>*>> biases;

    explicit Mlp(std::mt19937& rng) {
        std::uniform_real_distribution<double> uniform(-1, 1);
        std::size_t count = 0;
        for (std::size_t l = 1; l < sizes.size(); ++l) count += sizes[l] * (sizes[l - 1] + 1);
        for (std::size_t k = 0; k < count; ++k) params.emplace_back(static_cast<T>(uniform(rng)));
        std::size_t at = 0;
        for (std::size_t l = 1; l < sizes.size(); ++l) {
            weights.emplace_back();
            biases.emplace_back();
            for (std::size_t j = 0; j < sizes[l]; ++j, at += sizes[l - 1] + 1) {
                std::vector<const Value<T>*> w;
                for (std::size_t k = 0; k < sizes[l - 1]; ++k) w.push_back(&params[at + k]);
                weights.back().emplace_back(w.data(), w.size());
                biases.back().push_back(&params[at + sizes[l - 1]]);
            }
        }
    }

    // sum over the samples of (out - 0.5)**2, each sample's row of inputs in x
    Value<T> loss(const std::vector<std::vector<Value<T>>>& x) const {
        Value<T> total = T(0);
        for (const auto& row : x) {
            std::vector<Value<T>> h = row;
            for (std::size_t l = 0; l < weights.size(); ++l) {
                std::vector<const Value<T>*> in;
                for (const Value<T>& v : h) in.push_back(&v);
                const micrograd::NodeRow<T> inputs(in.data(), in.size());
                std::vector<Value<T>> next;
                for (std::size_t j = 0; j < weights[l].size(); ++j)
                    next.push_back(micrograd::neuron(weights[l][j], *biases[l][j], inputs,
                                                     l + 1 < weights.size()));
                h = next;
            }
            const Value<T> d = h[0] - T(0.5);
            total = total + d * d;
        }
        return total;
    }
};

TEST_CASE_TEMPLATE("a replayed MLP, its neurons in groups of every size, equals an eager rebuild",
                   T, double, float) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> uniform(-2, 2);
    const Mlp<T> mlp(rng);
    std::vector<std::vector<Value<T>>> x(5);
    std::vector<Value<T>> flat;
    for (auto& row : x) {
        for (int k = 0; k < 3; ++k) row.emplace_back(static_cast<T>(uniform(rng)));
        flat.insert(flat.end(), row.begin(), row.end());
    }
    const Value<T> loss = mlp.loss(x);
    Graph<T> g(loss, flat);
    for (int round = 0; round < 4; ++round) {
        std::vector<T> data;
        for (std::size_t k = 0; k < flat.size(); ++k) data.push_back(static_cast<T>(uniform(rng)));
        for (const Value<T>& p : mlp.params) p.node()->data += static_cast<T>(uniform(rng) / 8);
        g.set_inputs(data.data(), data.size());
        for (const Value<T>& p : mlp.params) p.node()->grad = T(0);
        for (const Value<T>& v : flat) v.node()->grad = T(0);  // leaves accumulate
        g.forward();
        g.backward();
        std::vector<T> got;
        for (const Value<T>& p : mlp.params) got.push_back(p.grad());

        std::vector<std::vector<Value<T>>> y(x.size());
        for (std::size_t s = 0, at = 0; s < x.size(); ++s)
            for (int k = 0; k < 3; ++k) y[s].emplace_back(data[at++]);
        const Value<T> want = mlp.loss(y);
        for (const Value<T>& p : mlp.params) p.node()->grad = T(0);
        micrograd::backward(want.node());
        CAPTURE(round);
        CHECK(same(loss.data(), want.data()));
        for (std::size_t k = 0; k < got.size(); ++k) {
            CAPTURE(k);
            CHECK(same(got[k], mlp.params[k].grad()));
        }
        for (std::size_t k = 0; k < flat.size(); ++k) {
            CAPTURE(k);
            CHECK(same(flat[k].grad(), y[k / 3][k % 3].grad()));
        }
    }
}

TEST_CASE("a 10^6-node chain captures, replays and frees without recursion") {
    const std::size_t base = live<double>();
    {
        Value<double> x = 0.5;
        Value<double> y = x;
        for (int k = 0; k < 1000000; ++k) y = y * 1.0000001 + 1e-7;
        Graph<double> g(y, {x});
        CHECK(g.size() == 4000001);  // x, then 2 constants and 2 ops per step
        const double one = 1.0;
        g.set_inputs(&one, 1);
        g.forward();
        g.backward();
        CHECK(x.grad() == doctest::Approx(std::pow(1.0000001, 1e6)).epsilon(1e-9));
        CHECK(y.data() == doctest::Approx(std::pow(1.0000001, 1e6) * 2 - 1).epsilon(1e-6));
    }
    CHECK(live<double>() == base);
}

TEST_CASE("inputs must be distinct leaves of the graph") {
    const Value<double> a = 1.0, b = 2.0, other = 3.0;
    const Value<double> c = a * b;
    CHECK_THROWS_WITH_AS(Graph<double>(c, {a, c}), doctest::Contains("inputs[1] is not a leaf"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Graph<double>(c, {other}), doctest::Contains("inputs[0] is not in"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Graph<double>(c, {a, b, a}),
                         doctest::Contains("inputs[2] is inputs[0] again"), std::invalid_argument);
    Graph<double> g(c, {a});
    const double two[] = {1.0, 2.0};
    CHECK_THROWS_AS(g.set_inputs(two, 2), std::invalid_argument);
    CHECK(a.data() == 1.0);
    CHECK(c.node()->pending == 0);  // no marks left behind by the failed captures
}

TEST_CASE("a neuron expanded after capture is captured again at the next replay") {
    const Value<double> w0 = 0.5, w1 = -1.5, b = 0.25, x0 = 2.0, x1 = 1.0;
    const Value<double>* w[] = {&w0, &w1};
    const micrograd::Operand<double> in[] = {{&x0, 0.0}, {&x1, 0.0}};
    const Value<double> n = micrograd::neuron(w, b, in, 2, false);
    Graph<double> g(n, {x0});
    CHECK(g.size() == 6);
    micrograd::expand(n.node());  // as reading its _prev does
    const double x = -3.0;
    g.set_inputs(&x, 1);
    g.forward();
    g.backward();
    CHECK(g.size() == 9);  // micrograd's 2 products and 1 sum more
    CHECK(n.data() == 0.5 * -3.0 + -1.5 * 1.0 + 0.25);
    CHECK(w0.grad() == -3.0);
    CHECK(x0.grad() == 0.5);
    CHECK(g.check() == 0.0);
}
