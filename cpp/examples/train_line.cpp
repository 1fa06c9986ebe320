// cpp/examples/train_line.cpp: fit y = 2x + 1 by gradient descent on a scalar graph.
#include <cmath>
#include <cstdio>
#include <micrograd.hpp>
#include <vector>

using micrograd::Value;

int main() {
    // Noise-free samples of the line y = 2x + 1.
    std::vector<double> xs, ys;
    for (int i = -4; i <= 4; ++i) {
        xs.push_back(0.5 * i);
        ys.push_back(2.0 * (0.5 * i) + 1.0);
    }

    // The model y = w x + b, starting from zero.
    Value<double> w = 0.0, b = 0.0;
    const double learning_rate = 0.1;
    double last_loss = 0.0;

    for (int step = 0; step < 200; ++step) {
        // Forward: mean squared error over the data. The graph is rebuilt every step and
        // freed when `loss` goes out of scope; w and b live on.
        Value<double> loss = 0.0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            Value<double> error = w * xs[i] + b - ys[i];
            loss = loss + error * error;
        }
        loss = loss / double(xs.size());

        // Backward: gradients are accumulated, so zero them first.
        w.set_grad(0.0);
        b.set_grad(0.0);
        loss.backward();

        // Gradient descent step.
        w.set_data(w.data() - learning_rate * w.grad());
        b.set_data(b.data() - learning_rate * b.grad());

        last_loss = loss.data();
        if (step % 40 == 0)
            std::printf("step %3d  loss %.3e  w %.4f  b %.4f\n", step, last_loss, w.data(),
                        b.data());
    }

    std::printf("learned w = %.4f, b = %.4f (true 2, 1), loss = %.2e\n", w.data(), b.data(),
                last_loss);
    const bool ok =
        std::fabs(w.data() - 2.0) < 1e-4 && std::fabs(b.data() - 1.0) < 1e-4 && last_loss < 1e-8;
    std::printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
