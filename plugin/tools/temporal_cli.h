// `starganv2-eval temporal`: what the element's temporal stabilisation (align/temporal.h) does to
// a clip. The clip goes through two Processors in the same run, offline and exact, one with
// stabilisation off and one with it on; the tool reports each output's flicker (the warping-error
// ratio of align/flicker.h), and how far the stabilised output strays from the per-frame one
// (ghosting, lag) over every frame and on the frames where the input changes: a new face or a
// cut, a style change, a mouth opening or closing, a fast turn. Also the stabilisation's CPU time
// per frame. The clip is a video file or a synthetic one (a head that moves and turns, then a
// cut), so the figures can be rerun without any data.
#pragma once

namespace starganv2::tools {

// argv[0] is the subcommand's name; `program` names it in messages. Returns the exit code.
int temporal_eval_main(int argc, char** argv, const char* program);

}  // namespace starganv2::tools
