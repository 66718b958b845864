// The memory floor of one level and of K levels on this machine: how long 2 threads take to read W1's float32
// input (256 x 3 x 224 x 224, 154 MB) once and write it with streaming stores once (one level) or K = 5 times
// (roundtrip_multi), with no arithmetic at all. Their ratio is the best "K = 5 time / one level" a kernel at
// the memory floor could show (benchmarks/RESULTS.md). Also a write alone into 1..30 interleaved output
// streams: the streams' count does not change the write bandwidth.
//
// Build and run (x86-64 with AVX2):
//   gcc -O2 -mavx2 -pthread benchmarks/write_floor.c -o /tmp/write_floor && /tmp/write_floor
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { kThreads = 2, kRuns = 9 };
static const size_t kInput = (size_t)256 * 3 * 224 * 224;  // floats of W1
static float *input, *output;                              // output: 5 x kInput floats
static int levels, streams;                                // what the threads do this run

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// levels > 0: read the input once, stream each 8-float piece into `levels` outputs (one thread's half).
// levels == 0: stream constants into `streams` interleaved regions of the whole output.
static void* work(void* arg) {
  const size_t id = (size_t)arg;
  if (levels > 0) {
    const size_t begin = kInput / kThreads * id, end = begin + kInput / kThreads;
    for (size_t i = begin; i < end; i += 8) {
      const __m256 x = _mm256_loadu_ps(input + i);
      for (int k = 0; k < levels; ++k) _mm256_stream_ps(output + k * kInput + i, x);
    }
  } else {
    const size_t region = 5 * kInput / streams / 256 * 256, begin = region / kThreads * id;
    const __m256 x = _mm256_set1_ps(1.0f + id);
    for (size_t i = begin; i < begin + region / kThreads; i += 128)
      for (int s = 0; s < streams; ++s)
        for (int j = 0; j < 128; j += 8) _mm256_stream_ps(output + s * region + i + j, x);
  }
  _mm_sfence();
  return NULL;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// Median seconds of kRuns runs of `work` on kThreads threads.
static double timed(void) {
  double t[kRuns];
  for (int r = 0; r < kRuns; ++r) {
    pthread_t threads[kThreads];
    const double begin = now();
    for (size_t i = 0; i < kThreads; ++i) pthread_create(&threads[i], NULL, work, (void*)i);
    for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
    t[r] = now() - begin;
  }
  qsort(t, kRuns, sizeof t[0], by_value);
  return t[kRuns / 2];
}

int main(void) {
  input = aligned_alloc(1 << 21, kInput * sizeof(float));
  output = aligned_alloc(1 << 21, 5 * kInput * sizeof(float));
  if (!input || !output) return 1;
  for (size_t i = 0; i < kInput; ++i) input[i] = (float)(i % 1000);  // touched: no page faults timed
  for (size_t i = 0; i < 5 * kInput; ++i) output[i] = 0.0f;
  levels = 1;
  const double one = timed();
  levels = 5;
  const double five = timed();
  printf("read 154 MB once + stream 1 output:  %6.2f ms\n", one * 1e3);
  printf("read 154 MB once + stream 5 outputs: %6.2f ms  (ratio %.2fx)\n", five * 1e3, five / one);
  levels = 0;
  const int counts[] = {1, 3, 5, 15, 30};
  for (int c = 0; c < 5; ++c) {
    streams = counts[c];
    const double t = timed();
    printf("stream 770 MB into %2d interleaved regions: %6.2f ms, %.1f GB/s\n", streams, t * 1e3,
           5 * kInput * sizeof(float) / t / 1e9);
  }
  return 0;
}
