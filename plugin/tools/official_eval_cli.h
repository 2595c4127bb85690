// The command line of the official StarGAN v2 evaluation (FID and LPIPS, model/official_eval.h),
// `starganv2-eval official`: eval.cpp hands it the arguments after the subcommand's name.
#pragma once

#include <string>

namespace starganv2::tools {

// Parses the options (see --help; argv[0] is skipped), loads the model, Inception and LPIPS
// files, decodes images with OpenCV as PIL would (RGB, no EXIF rotation), runs the protocol and
// prints the values. `program` names the command in help and messages (default: argv[0]'s file
// name), e.g. "starganv2-eval official". Returns 0 when done, 1 for bad input (one message on
// stderr).
int official_eval_main(int argc, char** argv, const std::string& program = "");

}  // namespace starganv2::tools
