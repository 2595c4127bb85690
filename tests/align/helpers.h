// Shared pieces of the align tests: the shape model (loaded once per test binary), the
// public-domain images the project installs, and synthetic frames built from them.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include <opencv2/core.hpp>

#include "align/alignment.h"
#include "align/landmarks.h"

namespace starganv2::align::test {

// dlib's 68-point model, loaded on first use and kept for the whole binary (loading takes ~1 s).
const std::shared_ptr<const ShapeModel>& shape_model();

// Public-domain images from Debian packages (setup.sh installs them). Fails the test with the
// package name when absent.
inline constexpr const char* kAstronaut = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";  // python3-skimage
inline constexpr const char* kCoffee = "/usr/lib/python3/dist-packages/skimage/data/coffee.png";        // python3-skimage, no face
inline constexpr const char* kMessi = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";             // opencv-doc
inline constexpr const char* kFruits = "/usr/share/doc/opencv-doc/examples/data/fruits.jpg";            // opencv-doc, no face
cv::Mat load_bgr(const std::string& path);

// The astronaut's head and shoulders (260x260 cut from astronaut.png) and where her face centre
// is in it: frames with several faces are made by placing copies of this.
cv::Mat astronaut_head();
inline const cv::Point2d kHeadFaceCentre(130, 126);

// A smooth random colour field with a little grain: "some other background".
cv::Mat random_background(cv::Size size, std::mt19937& rng);

// A smooth random colour texture, CV_32FC3: normal noise (cv::RNG(seed)) blurred by `sigma`
// pixels and stretched to [lo, hi]. Float, so that changes can be added before frames are cut
// from it and rounded; make it larger than the frames so that they can drift across it.
cv::Mat smooth_texture(cv::Size size, uint64_t seed, double sigma, double lo, double hi);

// `image` warped by M (image px -> canvas px, antialiased) and pasted over `background`.
cv::Mat place(const cv::Mat& image, const cv::Mat& background, const cv::Matx23d& M);

// Similarity turning by angle_deg (cv::getRotationMatrix2D sense) and scaling about `from`,
// which lands on `to`.
cv::Matx23d similarity(cv::Point2d from, cv::Point2d to, double angle_deg, double scale);

// Landmarks mapped by M.
Landmarks map(const cv::Matx23d& M, const Landmarks& points);
// Mean distance between corresponding points.
double mean_distance(const Landmarks& a, const Landmarks& b);

// PSNR of two 8-bit 3-channel images over the pixels where mask > 0.5 (mask CV_32F).
double psnr(const cv::Mat& a, const cv::Mat& b, const cv::Mat& mask);

}  // namespace starganv2::align::test
