// micrograd/losses.hpp: losses over a batch, built from the primitive ops.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "fused.hpp"

namespace micrograd {
namespace detail {

inline void check_batch(const char* loss, std::size_t n, std::size_t m) {
    if (n == 0) throw std::invalid_argument(std::string(loss) + ": the batch is empty");
    if (n != m)
        throw std::invalid_argument(std::string(loss) + ": got " + std::to_string(n) +
                                    " predictions but " + std::to_string(m) +
                                    " targets; pass one target per prediction");
}

// sum(terms) * (1.0 / len(terms)), as micrograd's demo averages its losses.
template <class T>
Value<T> mean(const std::vector<Value<T>>& terms) {
    const Value<T> total = sum(terms.begin(), terms.end(), Value<T>(T(0)));
    return total * Value<T>(static_cast<T>(1.0 / static_cast<double>(terms.size())));
}

}  // namespace detail

// The SVM max-margin loss of micrograd's demo: mean of relu(1 - y*s), labels y in {-1, 1}.
// Built as the demo writes it, (1 + -y*s).relu(), so its values match micrograd's.
template <class T>
Value<T> hinge_loss(const std::vector<Value<T>>& scores, const std::vector<T>& labels) {
    detail::check_batch("hinge_loss", scores.size(), labels.size());
    std::vector<Value<T>> terms;
    terms.reserve(scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i)
        terms.push_back((scores[i] * Value<T>(-labels[i]) + Value<T>(T(1))).relu());
    return detail::mean(terms);
}

// Mean squared error: mean((p - y)**2).
template <class T>
Value<T> mse_loss(const std::vector<Value<T>>& predictions,
                  const std::vector<Operand<T>>& targets) {
    detail::check_batch("mse_loss", predictions.size(), targets.size());
    std::vector<Value<T>> terms;
    terms.reserve(predictions.size());
    for (std::size_t i = 0; i < predictions.size(); ++i)
        terms.push_back((predictions[i] - targets[i].value_or_new_leaf()).pow(2));
    return detail::mean(terms);
}

// Binary cross-entropy on logits x with targets y in [0, 1]: mean(softplus(x) - x*y),
// which equals -(y log sigmoid(x) + (1-y) log(1 - sigmoid(x))) without overflow.
template <class T>
Value<T> binary_cross_entropy_with_logits(const std::vector<Value<T>>& logits,
                                          const std::vector<T>& targets) {
    detail::check_batch("binary_cross_entropy_with_logits", logits.size(), targets.size());
    std::vector<Value<T>> terms;
    terms.reserve(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i)
        terms.push_back(logits[i].softplus() - logits[i] * Value<T>(targets[i]));
    return detail::mean(terms);
}

// Softmax cross-entropy: for each row of class scores s and its class c,
// logsumexp(s) - s[c], with the row's largest score subtracted inside the exp so that
// large scores do not overflow: a max_shift node, which backward() treats as a constant
// (it changes no gradient) and a replayed graph recomputes.
template <class T>
Value<T> cross_entropy_loss(const std::vector<std::vector<Value<T>>>& scores,
                            const std::vector<std::size_t>& classes) {
    detail::check_batch("cross_entropy_loss", scores.size(), classes.size());
    std::vector<Value<T>> terms;
    terms.reserve(scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) {
        const auto& row = scores[i];
        if (classes[i] >= row.size())
            throw std::invalid_argument("cross_entropy_loss: class " + std::to_string(classes[i]) +
                                        " of sample " + std::to_string(i) +
                                        " is out of range for " + std::to_string(row.size()) +
                                        " class scores");
        Value<T> shift = row[0];
        for (std::size_t j = 1; j < row.size(); ++j) shift = max_shift(shift, row[j]);
        std::vector<Value<T>> exps;
        exps.reserve(row.size());
        for (const auto& s : row) exps.push_back((s - shift).exp());
        const Value<T> lse = sum(exps.begin(), exps.end(), Value<T>(T(0))).log() + shift;
        terms.push_back(lse - row[classes[i]]);
    }
    return detail::mean(terms);
}

// alpha * sum(p*p for p in params): the L2 penalty of micrograd's demo, built as it is.
template <class T>
Value<T> l2_penalty(const std::vector<Value<T>>& params, T alpha) {
    std::vector<Value<T>> squares;
    squares.reserve(params.size());
    for (const auto& p : params) squares.push_back(p * p);
    return sum(squares.begin(), squares.end(), Value<T>(T(0))) * Value<T>(alpha);
}

}  // namespace micrograd
