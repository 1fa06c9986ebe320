// tests/cpp/test_serialize.cpp: flatten() and rebuild() (a graph as arrays and back), op keys
// and the little-endian byte arrays, against the graph the Value operators build.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <micrograd.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "helpers.hpp"

using micrograd::FlatGraph;
using micrograd::Node;
using micrograd::Op;
using micrograd::Value;

namespace {

auto copy_all = [](const auto*) { return false; };

// micrograd's README expression; its leaves a and b.
template <class T>
Value<T> readme(Value<T>& a, Value<T>& b) {
    Value<T> c = a + b;
    Value<T> d = a * b + b.pow(3);
    c = c + (c + T(1));
    c = c + (T(1) + c + (-a));
    d = d + (d * T(2) + (b + a).relu());
    d = d + (T(3) * d + (b - a).relu());
    Value<T> e = c - d;
    Value<T> f = e.pow(2);
    Value<T> g = f / T(2);
    return g + T(10) / f;
}

}  // namespace

TEST_CASE_TEMPLATE("a rebuilt graph has the same nodes, values, grads and sharing", T, double,
                   float) {
    const std::size_t before = live<T>();
    {
        Value<T> a = T(-4), b = T(2);
        Value<T> g = readme(a, b);
        g.backward();
        FlatGraph<T> flat = micrograd::flatten(g.node(), copy_all);
        CHECK(flat.external.empty());
        CHECK(flat.source.back() == g.node());
        std::vector<Value<T>> copy = micrograd::rebuild(flat);
        REQUIRE(copy.size() == flat.source.size());
        for (std::size_t j = 0; j < copy.size(); ++j) {
            const Node<T>* n = copy[j].node();
            const Node<T>* s = flat.source[j];
            CHECK(n->op == s->op);
            CHECK(std::memcmp(&n->data, &s->data, sizeof(T)) == 0);
            CHECK(std::memcmp(&n->grad, &s->grad, sizeof(T)) == 0);
            if (n->op == Op::pow_const) {
                CHECK(n->k == s->k);
                CHECK(n->flags == s->flags);
            }
        }
        // backward() through the copy gives the original's grads, node for node
        for (std::size_t j = 0; j < copy.size(); ++j)
            copy[j].node()->grad = flat.source[j]->grad = T(0);
        g.backward();
        copy.back().backward();
        for (std::size_t j = 0; j < copy.size(); ++j)
            CHECK(copy[j].node()->grad == flat.source[j]->grad);
        CHECK(live<T>() == before + 2 * copy.size());  // a copy of every node, no more
    }
    CHECK(live<T>() == before);
}

TEST_CASE("kept nodes are shared, not copied or visited") {
    Value<double> x = 2.0, w = 3.0;
    Value<double> h = x * w;
    Value<double> out = h * h + h.relu();
    FlatGraph<double> flat =
        micrograd::flatten(out.node(), [&](const Node<double>* n) { return n == h.node(); });
    REQUIRE(flat.external.size() == 1);
    CHECK(flat.external[0] == h.node());
    CHECK(flat.source.size() == 3);  // h*h, relu(h) and their sum; not x, w or h
    std::vector<Value<double>> copy = micrograd::rebuild(flat);
    CHECK(copy.back().data() == out.data());
    CHECK(copy[0].node()->a == h.node());
}

TEST_CASE("a chain of a million nodes flattens and rebuilds without recursion") {
    Value<double> x = 0.5;
    Value<double> y = x;
    for (int i = 0; i < 1000000; ++i) y = -y;
    FlatGraph<double> flat = micrograd::flatten(y.node(), copy_all);
    CHECK(flat.source.size() == 1000001);
    std::vector<Value<double>> copy = micrograd::rebuild(flat);
    copy.back().backward();
    CHECK(copy.front().grad() == 1.0);  // (-1)**1000000
}

TEST_CASE("fused neurons are flattened as micrograd's nodes") {
    std::vector<Value<double>> w = {0.5, -1.0}, x = {2.0, 3.0};
    const Value<double>* wp[] = {&w[0], &w[1]};
    micrograd::Operand<double> xs[] = {{&x[0], 0.0}, {&x[1], 0.0}};
    Value<double> out = micrograd::neuron(wp, Value<double>(0.25), xs, 2, true);
    FlatGraph<double> flat = micrograd::flatten(out.node(), copy_all);
    for (Op op : flat.ops) CHECK_FALSE(micrograd::is_fused(op));
    CHECK(flat.ops.back() == Op::relu);
    CHECK(flat.data.back() == out.data());
}

TEST_CASE("op keys name every storable op once, and read back") {
    std::vector<std::string> keys;
    for (unsigned i = 0; std::strcmp(micrograd::op_name(static_cast<Op>(i)), "?") != 0; ++i) {
        const Op op = static_cast<Op>(i);
        if (micrograd::is_fused(op)) continue;
        const std::string key = micrograd::op_key(op);
        if (micrograd::is_custom(op)) {  // its backward is code: never stored
            CHECK_THROWS_AS(micrograd::op_from_key(key), std::invalid_argument);
            continue;
        }
        for (const auto& k : keys) CHECK(k != key);
        keys.push_back(key);
        CHECK(micrograd::op_from_key(key) == op);
    }
    CHECK(micrograd::op_key(Op::pow_const) == "**:1");
    CHECK(micrograd::op_key(Op::pow) == "**:2");
    CHECK_THROWS_AS(micrograd::op_from_key("sqrt:1"), std::invalid_argument);
}

TEST_CASE("malformed graphs are rejected before any node is made") {
    Value<double> a = 2.0;
    Value<double> out = (a * 3.0).pow(2);
    const FlatGraph<double> good = micrograd::flatten(out.node(), copy_all);
    const std::size_t before = live<double>();
    auto rejects = [&](FlatGraph<double> bad) {
        CHECK_THROWS_AS(micrograd::rebuild(bad), std::invalid_argument);
        CHECK(live<double>() == before);
    };
    FlatGraph<double> bad = good;
    bad.inputs[0] = 3;  // not an earlier node
    rejects(bad);
    bad = good;
    bad.inputs.pop_back();
    rejects(bad);
    bad = good;
    bad.exponents.clear();
    rejects(bad);
    bad = good;
    bad.grad.pop_back();
    rejects(bad);
    bad = good;
    bad.ops.back() = Op::neuron;
    rejects(bad);
    rejects(FlatGraph<double>{});
}

TEST_CASE("byte arrays are little-endian and round-trip") {
    const std::vector<std::uint32_t> ints = {1, 0x01020304u};
    const std::string bytes = micrograd::to_bytes(ints);
    CHECK(bytes == std::string("\x01\x00\x00\x00\x04\x03\x02\x01", 8));
    CHECK(micrograd::from_bytes<std::uint32_t>(bytes.data(), bytes.size(), "ints") == ints);
    const std::vector<double> reals = {1.0, -0.0, 0.1};
    const std::string r = micrograd::to_bytes(reals);
    CHECK(r.substr(0, 8) == std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8));  // 1.0
    const std::vector<double> back = micrograd::from_bytes<double>(r.data(), r.size(), "reals");
    CHECK(std::memcmp(back.data(), reals.data(), sizeof(double) * 3) == 0);
    CHECK_THROWS_AS(micrograd::from_bytes<double>(r.data(), 7, "reals"), std::invalid_argument);
}
