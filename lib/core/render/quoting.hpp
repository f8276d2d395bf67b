#pragma once
// Whether a value can stand inside a double-quoted string of racoon.conf or swanctl.conf:
// the one check behind the config validator (yaml_reader.cpp) and the renderers
// (render.cpp), so that a value the config accepts always renders.

#include <string>
#include <string_view>
#include <vector>

namespace ipopsec {

bool isControlChar(char c);  // < 0x20 or DEL
bool hasControlChar(std::string_view s);

// Why `s` cannot be written as a quoted string ("contains a control character", "contains
// '\"', which ..."); "" when it can. racoon's lexer reads a string as "[^"]*" with no
// escape; a backslash is refused too, as swanctl.conf would read it as one.
std::string unquotableReason(std::string_view s);

// An argv list as logs and status show it, as a shell would read it back: the words joined
// by spaces, a word that is empty or holds a space, a quote or another shell character in
// single quotes, one with a control character (a newline would break the log line) in
// $'...' with escapes; shortened with "..." past kMaxCommandShown bytes, never inside a
// UTF-8 character. So `[/bin/sh, -c, systemctl restart x]` reads
// "/bin/sh -c 'systemctl restart x'": a wrapper is named by what it runs.
std::string commandLine(const std::vector<std::string>& argv);
inline constexpr std::size_t kMaxCommandShown = 160;

}  // namespace ipopsec
