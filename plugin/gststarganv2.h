// starganv2: a video filter that restyles the faces in each frame with a StarGAN v2 generator.
#pragma once

#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_STARGANV2 (gst_starganv2_get_type())
G_DECLARE_FINAL_TYPE(GstStarganv2, gst_starganv2, GST, STARGANV2, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE(starganv2);

G_END_DECLS
