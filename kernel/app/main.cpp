#include <iostream>
#include <string_view>
#include <vector>

#include "app/cli.hpp"

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  return samokoder::app::run_cli(args, std::cout, std::cerr);
}
