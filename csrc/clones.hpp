// PGFAST_CLONES: run-time ISA dispatch for hot loops of the portable build.
//
// A function (or function template) marked PGFAST_CLONES is compiled three times, for
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2) and the baseline (SSE2), and the CPU picks one
// when the module loads (GCC function multiversioning through an ifunc). The wheel
// therefore runs vector code as wide as the machine has while staying portable.
// -ffp-contract=off (CMakeLists.txt) keeps the clones bit-identical: no clone fuses a
// multiply and an add, and nothing is reassociated, so the choice never changes a value
// (`make native-compare` checks this against a -march=native build).
// Elsewhere (other compilers or systems) and in a -march=native build
// (PGFAST_NO_CLONES) there is only the one function compiled.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(PGFAST_NO_CLONES)
#define PGFAST_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PGFAST_CLONES
#endif
