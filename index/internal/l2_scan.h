// Squared-L2 distance scans over contiguous float vectors, vectorized at run time.
//
// Debian's Faiss 1.7.3 is built without SIMD: its single-query distance loops are scalar and
// run at ~1.8x the memory pass over the vectors. FaceIndex scans Flat storage and IVF-Flat
// lists with these kernels instead. The AVX2+FMA kernel is chosen once, at first use, when
// the CPU has both; the scalar one otherwise (and when HOMEWARD_L2_KERNEL=scalar is set).
// The two agree to float rounding (they sum in different orders).
#ifndef HOMEWARD_INDEX_INTERNAL_L2_SCAN_H_
#define HOMEWARD_INDEX_INTERNAL_L2_SCAN_H_

#include <cstddef>

namespace homeward::index::internal {

// out[i] = sum_j (q[j] - x[i*d + j])^2 for i in [0, n).
void L2SqrBatch(const float* q, const float* x, size_t n, size_t d, float* out);

// The kernels themselves, for tests and benchmarks. L2SqrBatchAvx2 must only be called when
// HaveAvx2Kernel() is true.
void L2SqrBatchScalar(const float* q, const float* x, size_t n, size_t d, float* out);
void L2SqrBatchAvx2(const float* q, const float* x, size_t n, size_t d, float* out);
bool HaveAvx2Kernel();

// "avx2+fma" or "scalar": the kernel L2SqrBatch uses.
const char* L2KernelName();

}  // namespace homeward::index::internal

#endif  // HOMEWARD_INDEX_INTERNAL_L2_SCAN_H_
