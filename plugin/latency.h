// The processing time the element reports in the LATENCY query, as a rule apart from GStreamer
// so that it can be tested on made-up times.
//
// Rule: the reported time is kMargin times the largest frame time of the last kWindow frames
// that count. It grows at once when a frame takes longer than the reported time. It comes down
// only with hysteresis: once kWindow counted frames in a row have all stayed below the reported
// time by more than the band (kMargin * kShrinkBand), it drops to kMargin times their largest.
// Frames marked transient (the first frame after a style, alignment or reset change: the style
// recomputation, a new tracker, a first CUDA graph) do not count, so a burst of setting changes
// does not raise the latency for the rest of the stream.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace starganv2::plugin {

class LatencyEstimate {
 public:
  static constexpr size_t kWindow = 30;
  // Head-room on the measured time, so that one slower frame is not late at the sink.
  static constexpr double kMargin = 1.25;
  // How far below the reported time a whole window must stay before it comes down.
  static constexpr double kShrinkBand = 1.5;

  // Starts again from `initial_ns` (e.g. a warm-up translation's time, with margin).
  void reset(uint64_t initial_ns) {
    reported_ = initial_ns;
    times_.fill(0);
    next_ = 0;
    counted_ = 0;
    since_change_ = 0;
  }

  // Accounts one finished frame; returns true when the reported time changed.
  bool add(uint64_t frame_ns, bool transient) {
    if (transient) return false;
    times_[next_] = frame_ns;
    next_ = (next_ + 1) % kWindow;
    counted_ = std::min(counted_ + 1, kWindow);
    ++since_change_;
    const uint64_t recent_max = *std::max_element(times_.begin(), times_.end());
    if (recent_max > reported_) {
      reported_ = static_cast<uint64_t>(recent_max * kMargin);
      since_change_ = 0;
      return true;
    }
    if (counted_ == kWindow && since_change_ >= kWindow &&
        static_cast<double>(recent_max) * kMargin * kShrinkBand < static_cast<double>(reported_)) {
      reported_ = static_cast<uint64_t>(recent_max * kMargin);
      since_change_ = 0;
      return true;
    }
    return false;
  }

  uint64_t reported() const { return reported_; }

 private:
  uint64_t reported_ = 0;
  std::array<uint64_t, kWindow> times_{};
  size_t next_ = 0;
  size_t counted_ = 0;
  size_t since_change_ = 0;
};

}  // namespace starganv2::plugin
