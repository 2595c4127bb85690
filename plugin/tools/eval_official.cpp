// starganv2-eval-official: FID and LPIPS exactly as the official StarGAN v2 code computes them
// (metrics/eval.py); see official_eval_cli.h and --help.
#include "official_eval_cli.h"

int main(int argc, char** argv) { return starganv2::tools::official_eval_main(argc, argv); }
