// How well a blend mask stays on its face (issue 26), shared by starganv2-mask-share and the
// align tests: the share of the mask's weight that falls outside the face, and a synthetic head
// that turns (a frontal face image whose cheeks are narrowed and widened as a turn would).
#pragma once

#include <vector>

#include <opencv2/core.hpp>

#include "align/compositor.h"
#include "align/landmarks.h"

namespace starganv2::align::mask_check {

// The face in frame pixels (CV_8U, 255 inside): the hull of the jaw line (points 0-16) and of the
// eyebrows (17-26) raised by 0.6 of the distance from their mean to the nose tip (30), along that
// direction (the face's own up), dilated by `dilate_px`.
cv::Mat face_region(cv::Size frame, const Landmarks& landmarks, double dilate_px);

// The weights one face's blend gives a frame of `frame` size (CV_8U, 255 = the translated face):
// the element's view=mask of that face alone. `shape` as Compositor::composite takes it.
cv::Mat blend_weights(cv::Size frame, const Compositor& compositor, const cv::Matx23d& inverse,
                      const Landmarks* shape);

// The share (0..1) of the total of `weights` (CV_8U) where `region` is 0; 0 when there is none.
double share_outside(const cv::Mat& weights, const cv::Mat& region);

// The feather in frame pixels of a face with these landmarks (the crop side the aligner gives
// them, times `feather` crop widths): how far past the face the measured region reaches.
double feather_px(const Landmarks& landmarks, double feather);

// Where a frontal face's turn happens (turn_head): the vertical axis through its nose bridge, and
// how far behind the face the head turns (0.8 face widths), in image pixels.
struct HeadShape {
  double axis_x = 0, neck_depth = 0;
};
HeadShape head_shape(const Landmarks& frontal);

// `image` with its face turned by about `yaw_deg` (positive: the right side of the image turns
// away), as a horizontal 2-D warp in the way a turned head looks: the side that turns away
// narrows, row by row, from 55 % of the way out to its jaw line (or to the jaw's top end, above
// it), to max(0.15, 1 - 1.2 sin|yaw|) of its width at the jaw line (0.23 at 40 degrees), while
// eyes, nose, mouth and the other side keep their places and sizes; the background beyond is
// stretched to keep the image's edge, the neck turns less, and the whole head moves sideways by
// neck_depth sin(yaw), as a head turning about its neck does. `frontal` (landmarks in `image`)
// moves with the image: the true landmarks of the turned face. Deterministic.
struct TurnedHead {
  cv::Mat frame;
  Landmarks landmarks;
};
TurnedHead turn_head(const cv::Mat& image, const Landmarks& frontal, const HeadShape& head, double yaw_deg);

// The yaw of frame i of an n-frame turning clip: from 0 out to +max, across to -max and back to 0
// (one sine period).
double clip_yaw(int i, int n, double max_yaw_deg);

}  // namespace starganv2::align::mask_check
