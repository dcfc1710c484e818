// Version, language detection and build-mode macros shared by every entmax header.
#pragma once

#define ENTMAX_VERSION_MAJOR 0
#define ENTMAX_VERSION_MINOR 1
#define ENTMAX_VERSION_PATCH 0
#define ENTMAX_VERSION (ENTMAX_VERSION_MAJOR * 10000 + ENTMAX_VERSION_MINOR * 100 + ENTMAX_VERSION_PATCH)

// C++20 concepts are layered on top of the plain traits when the compiler has them.
#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
#define ENTMAX_HAS_CONCEPTS 1
#else
#define ENTMAX_HAS_CONCEPTS 0
#endif

// Exceptions: on unless the compiler was told otherwise; see entmax/error.hpp.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define ENTMAX_HAS_EXCEPTIONS 1
#else
#define ENTMAX_HAS_EXCEPTIONS 0
#endif

// ENTMAX_DEBUG (define to 1 before including) turns on input scans and post-condition checks.
#ifndef ENTMAX_DEBUG
#define ENTMAX_DEBUG 0
#endif
