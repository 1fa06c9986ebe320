// tests/cpp/test_mlp.cpp: layer_forward and mlp_forward (mlp.hpp) against micrograd's
// Layer and MLP computed by hand, in plain arithmetic, on dyadic numbers (exact sums).
#include <doctest/doctest.h>

#include <micrograd.hpp>
#include <stdexcept>
#include <vector>

#include "helpers.hpp"

using micrograd::LayerParams;
using micrograd::NodeRow;
using micrograd::Operand;
using micrograd::Value;

namespace {

struct Net {
    std::vector<Value<double>> params;  // every weight and bias, neuron by neuron
    std::vector<LayerParams<double>> layers;

    // MLP(2, [2, 1]): hidden ReLU neurons w = (0.5, -1), b = 0.25 and w = (2, 0.75),
    // b = -0.5; a linear output neuron w = (1.5, -0.25), b = 0.125.
    Net() {
        for (double v : {0.5, -1.0, 0.25, 2.0, 0.75, -0.5, 1.5, -0.25, 0.125})
            params.emplace_back(v);
        auto neuron = [&](std::size_t at, std::size_t n, bool relu) {
            std::vector<const Value<double>*> w;
            for (std::size_t k = 0; k < n; ++k) w.push_back(&params[at + k]);
            return micrograd::NeuronParams<double>{NodeRow<double>(w.data(), n), params[at + n],
                                                   relu};
        };
        layers = {{neuron(0, 2, true), neuron(3, 2, true)}, {neuron(6, 2, false)}};
    }
};

double relu(double x) {
    return x > 0 ? x : 0;
}

// The same network in plain arithmetic, as micrograd sums it: b + w0*x0 + w1*x1.
double by_hand(double x0, double x1) {
    const double h0 = relu(0.25 + 0.5 * x0 + -1.0 * x1);
    const double h1 = relu(-0.5 + 2.0 * x0 + 0.75 * x1);
    return 0.125 + 1.5 * h0 + -0.25 * h1;
}

}  // namespace

TEST_CASE("mlp_forward computes micrograd's MLP, from values or numbers") {
    Net net;
    for (auto [x0, x1] : {std::pair{1.0, 0.5}, std::pair{-2.0, 0.25}, std::pair{0.75, -1.5}}) {
        const Value<double> a(x0), b(x1);
        const Operand<double> values[] = {{&a, 0.0}, {&b, 0.0}};
        const Operand<double> numbers[] = {{nullptr, x0}, {nullptr, x1}};
        for (const Operand<double>* in : {values, numbers}) {
            const std::vector<Value<double>> out = micrograd::mlp_forward(net.layers, in, 2);
            REQUIRE(out.size() == 1);
            CHECK(out[0].data() == by_hand(x0, x1));
        }
    }
}

TEST_CASE("layer_forward: one shared row of values, a new leaf per neuron for a number") {
    Net net;
    const Value<double> a(1.0);
    const Operand<double> mixed[] = {{&a, 0.0}, {nullptr, 0.5}};
    const std::size_t before = live<double>();
    std::vector<Value<double>> out;
    micrograd::layer_forward(net.layers[0], mixed, 2, out);
    CHECK(live<double>() - before == 2 + 2);  // two neurons, and one leaf for 0.5 each
    CHECK(out[0].data() == relu(0.25 + 0.5 * 1.0 + -1.0 * 0.5));
    out.clear();
    CHECK(live<double>() == before);
    const Operand<double> values[] = {{&a, 0.0}, {&a, 0.0}};
    micrograd::layer_forward(net.layers[0], values, 2, out);
    CHECK(live<double>() - before == 2);  // no new leaf
}

TEST_CASE("a neuron with another number of inputs is refused before any node is made") {
    Net net;
    const Operand<double> three[] = {{nullptr, 1.0}, {nullptr, 2.0}, {nullptr, 3.0}};
    const std::size_t before = live<double>();
    CHECK_THROWS_WITH_AS(micrograd::mlp_forward(net.layers, three, 3),
                         "Neuron(2) got 3 inputs; it needs exactly 2", std::invalid_argument);
    CHECK(live<double>() == before);
}

TEST_CASE("no layers: nothing to compute") {
    const Operand<double> x[] = {{nullptr, 1.0}};
    CHECK(micrograd::mlp_forward<double>({}, x, 1).empty());
}

TEST_CASE("backward through mlp_forward gives micrograd's gradients") {
    Net net;
    const Value<double> a(1.0), b(0.5);
    const Operand<double> in[] = {{&a, 0.0}, {&b, 0.0}};
    Value<double> y = micrograd::mlp_forward(net.layers, in, 2)[0];
    y.backward();
    // h0 = relu(0.25 + 0.5 - 0.5) = 0.25 > 0, h1 = relu(-0.5 + 2 + 0.375) = 1.875 > 0:
    // dy/da = 1.5*0.5 + -0.25*2, dy/db = 1.5*-1 + -0.25*0.75.
    CHECK(a.grad() == 1.5 * 0.5 + -0.25 * 2.0);
    CHECK(b.grad() == 1.5 * -1.0 + -0.25 * 0.75);
    CHECK(net.params[8].grad() == 1.0);   // the output bias
    CHECK(net.params[6].grad() == 0.25);  // w = 1.5 times h0
}
