// tests/cpp/test_neuron.cpp: fused neurons (NodeRow, neuron, expand) against the graph the
// Value operators build for the same neuron, node for node as micrograd does.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <micrograd.hpp>
#include <stdexcept>
#include <vector>

#include "helpers.hpp"

using micrograd::Node;
using micrograd::NodeRow;
using micrograd::Op;
using micrograd::Operand;
using micrograd::Value;

namespace {

// Same bits (nan equal to nan).
template <class T>
bool same(T a, T b) {
    return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

// Weights, bias and inputs of one neuron, as values.
template <class T>
struct Case {
    std::vector<Value<T>> w, x;
    Value<T> b;

    Case(const std::vector<double>& ws, const std::vector<double>& xs, double bias) : b(T(bias)) {
        for (double v : ws) w.emplace_back(T(v));
        for (double v : xs) x.emplace_back(T(v));
    }

    // micrograd's Neuron.__call__ with the Value operators: sum((wi*xi ...), b), relu.
    Value<T> unfused(bool relu) const {
        Value<T> act = b;
        for (std::size_t k = 0; k < w.size(); ++k) act = act + w[k] * x[k];
        return relu ? act.relu() : act;
    }

    Value<T> fused(bool relu) const {
        std::vector<const Value<T>*> wp;
        std::vector<Operand<T>> xo;
        for (const auto& v : w) wp.push_back(&v);
        for (const auto& v : x) xo.push_back({&v, T(0)});
        return micrograd::neuron(wp.data(), b, xo.data(), w.size(), relu);
    }

    std::vector<T> grads() const {
        std::vector<T> out;
        for (const auto& v : w) out.push_back(v.grad());
        for (const auto& v : x) out.push_back(v.grad());
        out.push_back(b.grad());
        return out;
    }

    void zero() {
        for (auto& v : w) v.set_grad(0);
        for (auto& v : x) v.set_grad(0);
        b.set_grad(0);
    }
};

template <class T>
void check_same(const std::vector<T>& a, const std::vector<T>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(same(a[i], b[i]), "at ", i);
}

// Nodes of the graph under n, in a fixed walk order (n, then a's subgraph, then b's), with
// leaves left out (they are the case's own values).
template <class T>
std::vector<const Node<T>*> interior(const Node<T>* n) {
    std::vector<const Node<T>*> out, stack{n};
    while (!stack.empty()) {
        const Node<T>* m = stack.back();
        stack.pop_back();
        if (m->op == Op::leaf) continue;
        out.push_back(m);
        if (micrograd::detail::is_binary(m->op)) stack.push_back(m->b);
        stack.push_back(m->a);
    }
    return out;
}

const std::vector<double> kW = {0.3, -1.7, 2.25, 0.1, -0.45};
const std::vector<double> kX = {1.1, 0.6, -0.35, 4.0, -2.5};

}  // namespace

TEST_CASE_TEMPLATE("a fused neuron has the unfused graph's value and grads, bit for bit", T, double,
                   float) {
    for (bool relu : {false, true}) {
        for (double bias : {0.2, -9.0}) {  // -9: the relu is off, its gradient 0
            CAPTURE(relu);
            CAPTURE(bias);
            Case<T> ref(kW, kX, bias), ours(kW, kX, bias);
            Value<T> y_ref = ref.unfused(relu), y = ours.fused(relu);
            CHECK(same(y.data(), y_ref.data()));
            CHECK(y.op() == (relu ? Op::neuron_relu : Op::neuron));
            CHECK(std::string(micrograd::op_name(y.op())) == (relu ? "ReLU" : "+"));
            for (int pass = 1; pass <= 3; ++pass) {  // no zeroing: interior grads accumulate
                CAPTURE(pass);
                y_ref.backward();
                y.backward();
                check_same(ours.grads(), ref.grads());
            }
        }
    }
}

TEST_CASE_TEMPLATE("expand() builds the unfused graph's nodes with their values and grads", T,
                   double, float) {
    for (int passes : {0, 1, 2}) {
        for (bool relu : {false, true}) {
            for (std::size_t n : {std::size_t(1), std::size_t(2), kW.size()}) {
                CAPTURE(passes);
                CAPTURE(relu);
                CAPTURE(n);
                const std::vector<double> ws(kW.begin(), kW.begin() + n),
                    xs(kX.begin(), kX.begin() + n);
                Case<T> ref(ws, xs, 0.5), ours(ws, xs, 0.5);
                Value<T> y_ref = ref.unfused(relu), y = ours.fused(relu);
                for (int p = 0; p < passes; ++p) y_ref.backward(), y.backward();
                Node<T>* node = y.node();
                micrograd::expand(node);
                CHECK(y.node() == node);  // in place
                const auto got = interior<T>(node), want = interior<T>(y_ref.node());
                REQUIRE(got.size() == want.size());
                for (std::size_t i = 0; i < got.size(); ++i) {
                    CAPTURE(i);
                    CHECK(got[i]->op == want[i]->op);
                    CHECK(same(got[i]->data, want[i]->data));
                    CHECK(same(got[i]->grad, want[i]->grad));
                }
                // and backward through the expanded nodes goes on as through micrograd's
                y_ref.backward();
                y.backward();
                check_same(ours.grads(), ref.grads());
            }
        }
    }
}

TEST_CASE("neurons sharing rows: a layer on one row of inputs") {
    using T = double;
    const std::vector<std::vector<double>> rows = {
        {0.5, -1.25, 2.0}, {1.5, 0.25, -0.75}, {-2.0, 1.0, 0.125}};
    std::vector<Value<T>> x = {Value<T>(0.3), Value<T>(-1.1), Value<T>(2.6)};
    std::vector<Value<T>> b = {Value<T>(0.1), Value<T>(-0.2), Value<T>(0.3)};
    std::vector<std::vector<Value<T>>> w(rows.size());
    for (std::size_t j = 0; j < rows.size(); ++j)
        for (double v : rows[j]) w[j].emplace_back(v);
    auto grads = [&] {
        std::vector<T> out;
        for (auto& row : w)
            for (auto& v : row) out.push_back(v.grad()), v.set_grad(0);
        for (auto& v : x) out.push_back(v.grad()), v.set_grad(0);
        for (auto& v : b) out.push_back(v.grad()), v.set_grad(0);
        return out;
    };
    const std::size_t before = live<T>();
    std::vector<T> want, got;
    {  // the layer feeding a sum, with the Value operators
        Value<T> total = 0.0;
        for (std::size_t j = 0; j < w.size(); ++j) {
            Value<T> act = b[j];
            for (std::size_t k = 0; k < x.size(); ++k) act = act + w[j][k] * x[k];
            total = total + act.relu() * Value<T>(T(j + 1));
        }
        total.backward();
        want = grads();
    }
    {  // the same with one row of inputs shared by the three fused neurons
        std::vector<const Value<T>*> xp;
        for (const auto& v : x) xp.push_back(&v);
        const NodeRow<T> inputs(xp.data(), xp.size());
        Value<T> total = 0.0;
        for (std::size_t j = 0; j < w.size(); ++j) {
            std::vector<const Value<T>*> wp;
            for (const auto& v : w[j]) wp.push_back(&v);
            total =
                total + micrograd::neuron(NodeRow<T>(wp.data(), wp.size()), b[j], inputs, true) *
                            Value<T>(T(j + 1));
        }
        total.backward();
        got = grads();
    }
    check_same(got, want);
    CHECK(live<T>() == before);  // rows and neurons are gone with the graph
}

TEST_CASE("numbers among the inputs become a new leaf in each neuron") {
    Value<double> w0 = 2.0, w1 = -3.0, b = 0.5, x1 = 4.0;
    const Value<double>* w[] = {&w0, &w1};
    const Operand<double> x[] = {{nullptr, 1.5}, {&x1, 0.0}};
    const std::size_t before = live<double>();
    Value<double> y = micrograd::neuron(w, b, x, 2, false);
    CHECK(live<double>() == before + 2);  // the node and the leaf for 1.5
    CHECK(y.data() == 0.5 + 2.0 * 1.5 + -3.0 * 4.0);
    y.backward();
    CHECK(w0.grad() == 1.5);
    CHECK(x1.grad() == -3.0);
    {
        const auto inputs = y.inputs();  // expands it first
        REQUIRE(inputs.size() == 2);
        CHECK(inputs[0].node() == y.node()->a);
        CHECK(inputs[1].node() == y.node()->b);
    }
    CHECK(live<double>() == before + 5);  // + m[0], s[0], m[1] (the node is s[1])
    CHECK(y.node()->op == Op::add);
    CHECK(y.node()->b->op == Op::mul);
    CHECK(y.node()->a->op == Op::add);
    CHECK(y.node()->a->b->b->data == 1.5);  // m[0] = w0 * (leaf 1.5)
    y = Value<double>();
    CHECK(live<double>() == before + 1);  // the new empty leaf
}

TEST_CASE("a neuron without inputs is its bias (and its relu)") {
    Value<double> b = -2.0;
    CHECK(micrograd::neuron<double>(nullptr, b, nullptr, 0, false).node() == b.node());
    Value<double> r = micrograd::neuron<double>(nullptr, b, nullptr, 0, true);
    CHECK(r.op() == Op::relu);
    CHECK(r.data() == 0.0);
}

TEST_CASE("rows of different sizes are refused") {
    Value<double> a = 1.0, b = 2.0;
    const Value<double>* two[] = {&a, &b};
    CHECK_THROWS_AS(micrograd::neuron(NodeRow<double>(two, 2), a, NodeRow<double>(two, 1), false),
                    std::invalid_argument);
}

TEST_CASE("expand() refuses to run inside backward()") {
    // The interrupt poll runs code during backward()'s walks (the Python module's signal
    // handlers); expanding a neuron there would change the graph under the walk.
    static Node<double>* target = nullptr;
    static bool refused = false;
    Value<double> w = 0.5, b = 0.25, x = 2.0;
    const Value<double>* wp[] = {&w};
    const Operand<double> xo[] = {{&x, 0.0}};
    Value<double> y = micrograd::neuron(wp, b, xo, 1, true);
    target = y.node();
    for (int i = 0; i < 70'000; ++i) y = y + 1.0;  // long enough for a poll
    auto& hooks = micrograd::hooks<double>();
    hooks.interrupted = []() noexcept {
        try {
            micrograd::expand(target);
        } catch (const std::logic_error&) {
            refused = true;
        }
        return false;
    };
    y.backward();
    hooks.interrupted = nullptr;
    CHECK(refused);
    CHECK(target->op == Op::neuron_relu);  // unchanged
    CHECK(w.grad() == 2.0);
}
