#include "core/quoting.hpp"

#include <algorithm>

namespace ipopsec {

bool isControlChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool hasControlChar(std::string_view s) { return std::any_of(s.begin(), s.end(), isControlChar); }

std::string unquotableReason(std::string_view s) {
  for (char c : s) {
    if (isControlChar(c)) return "contains a control character";
    if (c == '"' || c == '\\')
      return "contains '" + std::string(1, c) + "', which racoon.conf and swanctl.conf can't quote";
  }
  return "";
}

std::string commandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) {
    if (!line.empty()) line += ' ';
    if (!word.empty() && word.find_first_of(" \t\n'\"\\$`;&|<>(){}*?!#~") == std::string::npos) {
      line += word;
      continue;
    }
    line += '\'';
    for (char c : word) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  if (line.size() > kMaxCommandShown) line = line.substr(0, kMaxCommandShown - 3) + "...";
  return line;
}

}  // namespace ipopsec
