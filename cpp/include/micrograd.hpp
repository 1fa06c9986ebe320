// micrograd.hpp: the whole header-only core (include this one).
#pragma once

#include "micrograd/arena.hpp"
#include "micrograd/backward.hpp"
#include "micrograd/fused.hpp"
#include "micrograd/fused_node.hpp"
#include "micrograd/graph.hpp"
#include "micrograd/losses.hpp"
#include "micrograd/mlp.hpp"
#include "micrograd/node.hpp"
#include "micrograd/ops.hpp"
#include "micrograd/optim.hpp"
#include "micrograd/release.hpp"
#include "micrograd/serialize.hpp"
#include "micrograd/value.hpp"
