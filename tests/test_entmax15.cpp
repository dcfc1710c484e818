// Tests of entmax/entmax15.hpp: the shared row-map properties (row_map_checks.hpp) for entmax15.
#include <entmax/entmax15.hpp>

#include <catch2/catch.hpp>

#include "row_map_checks.hpp"

ENTMAX_ROW_MAP_TESTS(entmax_test::Map::entmax15)
