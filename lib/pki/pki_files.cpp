#include "pki/pki_files.hpp"

#include <sys/stat.h>

#include <filesystem>

#include "os/files/file_store.hpp"
#include "pki/pki.hpp"

namespace ipopsec::pki {

std::string readAll(const std::string& path, const std::string& what) {
  AtomicFileStore fs;
  std::string content;
  if (auto ec = fs.read(path, content)) throw PkiError(path + " (" + what + "): " + ec.message());
  return content;
}

void ensureDir(const std::string& dir, unsigned mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return;
  if (std::filesystem::exists(dir, ec)) throw PkiError(dir + " exists and is not a directory");
  std::filesystem::create_directories(dir, ec);
  if (ec) throw PkiError("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), mode);
}

void writeFile(const std::string& path, const std::string& content, unsigned mode) {
  AtomicFileStore fs;
  if (auto ec = fs.write(path, content, mode)) throw PkiError("cannot write " + path + ": " + ec.message());
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

void checkOverwrite(const std::vector<std::string>& files, const std::string& outCa, const std::string& caPem,
                    bool force) {
  if (force) return;
  for (const auto& p : files)
    if (exists(p)) throw PkiError(p + " already exists: refusing to overwrite it; use --force to replace it");
  if (!outCa.empty() && exists(outCa)) {
    AtomicFileStore fs;
    std::string have;
    if (fs.read(outCa, have) || have != caPem)
      throw PkiError(outCa + " already exists and is not this CA's certificate: refusing to overwrite it; use --force");
  }
}

}  // namespace ipopsec::pki
