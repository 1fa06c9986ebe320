// micrograd/optim.hpp: optimizers that update many parameters in one call (PyTorch's rules).
#pragma once

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "value.hpp"

namespace micrograd {
namespace detail {

// The shortest decimal that reads back as x ("-1e-08", "0.1").
inline std::string shortest(double x) {
    char digits[32];
    return std::string(digits, std::to_chars(digits, digits + sizeof digits, x).ptr);
}

// Rejects x outside [lo, hi] (or [lo, hi) when hi_open), nan, and +-inf.
inline void check_hyper(const char* what, double x, double lo, double hi, bool hi_open) {
    if (!(std::isfinite(x) && x >= lo && (hi_open ? x < hi : x <= hi)))
        throw std::invalid_argument(std::string(what) + " must be a finite number in [" +
                                    shortest(lo) + ", " + (std::isinf(hi) ? "inf" : shortest(hi)) +
                                    (hi_open ? ")" : "]") + ", got " + shortest(x));
}

}  // namespace detail

// Sets the grad of every parameter to 0.
template <class T>
void zero_grad(const std::vector<Value<T>>& params) noexcept {
    for (const auto& p : params) p.node()->grad = T(0);
}

// Stochastic gradient descent, as torch.optim.SGD (dampening 0, no Nesterov):
//   g = grad + weight_decay * p;  buf = momentum * buf + g (buf = g on the first step);
//   p -= lr * buf   (with momentum 0: p -= lr * g, micrograd's update exactly).
template <class T>
class SGD {
public:
    SGD(std::vector<Value<T>> params, double lr, double momentum = 0, double weight_decay = 0)
        : params_(std::move(params)) {
        set_lr(lr);
        detail::check_hyper("SGD: momentum", momentum, 0, INFINITY, false);
        detail::check_hyper("SGD: weight_decay", weight_decay, 0, INFINITY, false);
        momentum_ = static_cast<T>(momentum);
        weight_decay_ = static_cast<T>(weight_decay);
    }

    void step() {
        if (momentum_ != 0 && buf_.empty()) buf_.resize(params_.size());
        for (std::size_t i = 0; i < params_.size(); ++i) {
            auto& p = *params_[i].node();
            T g = p.grad;
            if (weight_decay_ != 0) g += weight_decay_ * p.data;
            if (momentum_ != 0) {
                buf_[i] = steps_ == 0 ? g : momentum_ * buf_[i] + g;
                g = buf_[i];
            }
            p.data -= lr_ * g;
        }
        ++steps_;
    }
    void zero_grad() noexcept { micrograd::zero_grad(params_); }

    double lr() const noexcept { return lr_; }
    void set_lr(double lr) {
        detail::check_hyper("SGD: lr", lr, 0, INFINITY, false);
        lr_ = static_cast<T>(lr);
    }
    const std::vector<Value<T>>& params() const noexcept { return params_; }
    double momentum() const noexcept { return momentum_; }
    double weight_decay() const noexcept { return weight_decay_; }

    // The state a copy carries: the momentum buffers (none before the first step with
    // momentum) and the number of steps taken. restore() puts it back, checked first.
    const std::vector<T>& buffers() const noexcept { return buf_; }
    long steps() const noexcept { return steps_; }
    void restore(std::vector<T> buffers, long steps) {
        if (!buffers.empty() && buffers.size() != params_.size())
            throw std::invalid_argument("SGD: " + std::to_string(buffers.size()) +
                                        " momentum buffers for " + std::to_string(params_.size()) +
                                        " parameters");
        if (steps < 0 || (!buffers.empty() && (momentum_ == 0 || steps == 0)))
            throw std::invalid_argument(
                "SGD: momentum buffers without momentum or steps, or "
                "a negative step count");
        buf_ = std::move(buffers);
        steps_ = steps;
    }

private:
    std::vector<Value<T>> params_;
    std::vector<T> buf_;
    T lr_ = 0, momentum_ = 0, weight_decay_ = 0;
    long steps_ = 0;
};

// Adam, as torch.optim.Adam (L2 weight decay added to the gradient, no amsgrad):
//   g = grad + weight_decay * p;  m += (1-b1)*(g-m);  v = b2*v + (1-b2)*g*g;
//   p -= (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)
template <class T>
class Adam {
public:
    Adam(std::vector<Value<T>> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
         double eps = 1e-8, double weight_decay = 0)
        : params_(std::move(params)), m_(params_.size()), v_(params_.size()) {
        set_lr(lr);
        detail::check_hyper("Adam: beta1", beta1, 0, 1, true);
        detail::check_hyper("Adam: beta2", beta2, 0, 1, true);
        detail::check_hyper("Adam: eps", eps, 0, INFINITY, false);
        detail::check_hyper("Adam: weight_decay", weight_decay, 0, INFINITY, false);
        beta1_ = beta1;
        beta2_ = beta2;
        eps_ = static_cast<T>(eps);
        weight_decay_ = static_cast<T>(weight_decay);
    }

    void step() {
        ++t_;
        const T b1 = static_cast<T>(beta1_), b2 = static_cast<T>(beta2_);
        const T step_size = static_cast<T>(lr_ / (1 - std::pow(beta1_, t_)));
        const T correction2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(beta2_, t_)));
        for (std::size_t i = 0; i < params_.size(); ++i) {
            auto& p = *params_[i].node();
            T g = p.grad;
            if (weight_decay_ != 0) g += weight_decay_ * p.data;
            m_[i] += (1 - b1) * (g - m_[i]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
            v_[i] = b2 * v_[i] + (1 - b2) * (g * g);
            p.data -= step_size * (m_[i] / (std::sqrt(v_[i]) / correction2_sqrt + eps_));
        }
    }
    void zero_grad() noexcept { micrograd::zero_grad(params_); }

    double lr() const noexcept { return lr_; }
    void set_lr(double lr) {
        detail::check_hyper("Adam: lr", lr, 0, INFINITY, false);
        lr_ = lr;
    }
    const std::vector<Value<T>>& params() const noexcept { return params_; }
    double beta1() const noexcept { return beta1_; }
    double beta2() const noexcept { return beta2_; }
    double eps() const noexcept { return eps_; }
    double weight_decay() const noexcept { return weight_decay_; }

    // The state a copy carries: the first and second moments and the step count.
    // restore() puts it back, checked first.
    const std::vector<T>& first_moments() const noexcept { return m_; }
    const std::vector<T>& second_moments() const noexcept { return v_; }
    long steps() const noexcept { return t_; }
    void restore(std::vector<T> m, std::vector<T> v, long steps) {
        if (m.size() != params_.size() || v.size() != params_.size())
            throw std::invalid_argument("Adam: " + std::to_string(m.size()) + " and " +
                                        std::to_string(v.size()) + " moments for " +
                                        std::to_string(params_.size()) + " parameters");
        if (steps < 0) throw std::invalid_argument("Adam: a negative step count");
        m_ = std::move(m);
        v_ = std::move(v);
        t_ = steps;
    }

private:
    std::vector<Value<T>> params_;
    std::vector<T> m_, v_;
    double lr_ = 0, beta1_ = 0, beta2_ = 0;
    T eps_ = 0, weight_decay_ = 0;
    long t_ = 0;
};

}  // namespace micrograd
