#pragma once
// The files of the CA tooling (pki.hpp): read whole, written atomically with their mode,
// directories made when missing, and the refusal to overwrite what a command would
// replace. Each throws PkiError naming the file.

#include <string>
#include <vector>

namespace ipopsec::pki {

// The file's content; `what` names it in the error ("the CA key").
std::string readAll(const std::string& path, const std::string& what);
void ensureDir(const std::string& dir, unsigned mode);
void writeFile(const std::string& path, const std::string& content, unsigned mode);
bool exists(const std::string& path);  // lstat: a dangling link exists too
// Refuses to overwrite `files` (unless force) and a cacert.pem that is not this CA's.
void checkOverwrite(const std::vector<std::string>& files, const std::string& outCa, const std::string& caPem,
                    bool force);

}  // namespace ipopsec::pki
