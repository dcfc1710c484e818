// Tests of entmax/softmax.hpp: the shared row-map properties (row_map_checks.hpp) for softmax.
#include <entmax/softmax.hpp>

#include <catch2/catch.hpp>

#include "row_map_checks.hpp"

ENTMAX_ROW_MAP_TESTS(entmax_test::Map::softmax)
