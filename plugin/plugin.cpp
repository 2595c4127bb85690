// The GStreamer plugin `starganv2`: one element of the same name.
#include <gst/gst.h>

#include "gststarganv2.h"

static gboolean plugin_init(GstPlugin* plugin) {
  return GST_ELEMENT_REGISTER(starganv2, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, starganv2,
                  "StarGAN v2 face translation for live and recorded video", plugin_init, VERSION,
                  "MIT/X11", PACKAGE, GST_PACKAGE_ORIGIN)
