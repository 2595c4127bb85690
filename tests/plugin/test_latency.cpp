// The rule of the latency the element reports (plugin/latency.h), on made-up frame times: the
// element feeds it every finished frame's time, so these are the element's figures.
#include <gtest/gtest.h>

#include <cstdint>

#include "plugin/latency.h"

using starganv2::plugin::LatencyEstimate;

namespace {
constexpr uint64_t kMs = 1000000;
}

// A burst of setting changes (each first frame after one is transient, however slow) does not
// raise the reported latency for the rest of the stream.
TEST(LatencyRule, BurstOfStyleChangesDoesNotRaiseIt) {
  LatencyEstimate e;
  e.reset(10 * kMs);
  for (int i = 0; i < 40; ++i) e.add(8 * kMs, false);
  const uint64_t before = e.reported();
  EXPECT_EQ(before, 10 * kMs);
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(e.add(300 * kMs, /*transient=*/true));  // a style recomputed on this frame
    e.add(8 * kMs, false);
  }
  for (int i = 0; i < 100; ++i) e.add(8 * kMs, false);
  EXPECT_EQ(e.reported(), before);
}

// A frame that really takes longer raises it at once (with the margin)...
TEST(LatencyRule, GrowsAtOnce) {
  LatencyEstimate e;
  e.reset(10 * kMs);
  EXPECT_FALSE(e.add(9 * kMs, false));
  EXPECT_TRUE(e.add(40 * kMs, false));
  EXPECT_EQ(e.reported(), static_cast<uint64_t>(40 * kMs * LatencyEstimate::kMargin));
}

// ...and after the transient it comes down again, but only once a whole window of frames stayed
// below it by more than the hysteresis band, and not for small changes.
TEST(LatencyRule, ComesDownAfterATransientWithHysteresis) {
  LatencyEstimate e;
  e.reset(10 * kMs);
  e.add(80 * kMs, false);  // e.g. the machine was busy for a moment
  const uint64_t high = e.reported();
  ASSERT_EQ(high, 100 * kMs);
  int changed_at = -1;
  for (int i = 0; i < 3 * static_cast<int>(LatencyEstimate::kWindow); ++i)
    if (e.add(10 * kMs, false) && changed_at < 0) changed_at = i;
  // The 80 ms frame leaves the window after kWindow - 1 more frames; the next one may lower it.
  EXPECT_EQ(changed_at, static_cast<int>(LatencyEstimate::kWindow) - 1);
  EXPECT_EQ(e.reported(), static_cast<uint64_t>(10 * kMs * LatencyEstimate::kMargin));
  // Within the band (12.5 ms reported, frames of 9 ms): it stays.
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(e.add(9 * kMs, false));
}
