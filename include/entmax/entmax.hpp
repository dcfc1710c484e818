// The whole public API of entmax in one include.
#pragma once

#include <entmax/config.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

// One row: const T* z -> T* p, and backward.
#include <entmax/entmax15.hpp>
#include <entmax/entmax_bisect.hpp>
#include <entmax/entmax_sort.hpp>
#include <entmax/softmax.hpp>
#include <entmax/sparsemax.hpp>

// Policies, row-scaled maps and their temperatures, losses.
#include <entmax/asentmax.hpp>
#include <entmax/losses.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/scalable_softmax.hpp>
#include <entmax/temperature.hpp>

// Eigen matrices and tensors.
#include <entmax/attention.hpp>
#include <entmax/eigen.hpp>
