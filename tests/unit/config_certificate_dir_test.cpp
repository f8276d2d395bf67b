// racoon.certificate_dir's default follows ike.backend (/etc/racoon/certs for racoon,
// /etc/ipop-ipsec/certs for strongSwan), and a strongSwan node set up when /etc/racoon/certs was
// the default of both, whose config does not set the key, keeps reading its certificates there
// (useLegacyCertificateDir, core/config/certificate_dir.hpp) with a warning naming the key.

#include "core/config/certificate_dir.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include "core/config/parse_config.hpp"

namespace ipopsec {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kNew = "/etc/ipop-ipsec/certs";
const std::string kOld = "/etc/racoon/certs";
const std::string kSwan = "ike:\n  backend: strongswan\n";

// A file system that holds exactly `files`; records what was asked.
struct Files {
  std::set<std::string> files;
  std::set<std::string> asked;
  bool operator()(const std::string& path) {
    asked.insert(path);
    return files.count(path) > 0;
  }
};

Config load(const std::string& yaml, Files& fs) {
  Config c = parseConfig(yaml, "t.yaml");
  useLegacyCertificateDir(c, std::ref(fs));
  return c;
}

Files threeIn(const std::string& dir) {
  return Files{{dir + "/cacert.pem", dir + "/host-cert.pem", dir + "/host-key.pem"}, {}};
}

TEST(ConfigCertificateDir, TheDefaultFollowsTheBackend) {
  EXPECT_EQ(parseConfig("ipop:\n  interface: ipop\n", "t.yaml").racoon.certificateDir, kOld);
  EXPECT_EQ(parseConfig("ike:\n  backend: racoon\n", "t.yaml").racoon.certificateDir, kOld);
  const Config swan = parseConfig(kSwan, "t.yaml");
  EXPECT_EQ(swan.racoon.certificateDir, kNew);
  EXPECT_TRUE(swan.racoon.certificateDirDefaulted);
  EXPECT_EQ(certificatePath(swan, swan.racoon.hostKey), kNew + "/host-key.pem");
  EXPECT_THAT(swan.warnings, IsEmpty());
  // The backend's row, and the header's initialiser is the racoon row.
  EXPECT_EQ(backendDefaults(IkeBackend::strongswan).certificateDir, kNew);
  EXPECT_EQ(Config{}.racoon.certificateDir, backendDefaults(IkeBackend::racoon).certificateDir);
}

TEST(ConfigCertificateDir, AnExplicitDirectoryIsKeptWhateverTheBackend) {
  for (const char* backend : {"racoon", "strongswan"})
    for (const std::string& dir : {kOld, kNew, std::string("/srv/certs")}) {
      const std::string yaml = std::string("ike:\n  backend: ") + backend + "\nracoon:\n  certificate_dir: " + dir + "\n";
      // Even with the files only in the other default directory: the config said where.
      Files fs = threeIn(dir == kOld ? kNew : kOld);
      const Config c = load(yaml, fs);
      EXPECT_EQ(c.racoon.certificateDir, dir) << yaml;
      EXPECT_FALSE(c.racoon.certificateDirDefaulted) << yaml;
      EXPECT_THAT(c.warnings, IsEmpty()) << yaml;
      EXPECT_THAT(fs.asked, IsEmpty()) << yaml;  // not even looked at
    }
  // In either order of the sections.
  EXPECT_EQ(parseConfig("racoon:\n  certificate_dir: /srv/c\nike:\n  backend: strongswan\n", "t.yaml").racoon.certificateDir,
            "/srv/c");
}

TEST(ConfigCertificateDir, AStrongswanNodeWithItsCertificatesInTheOldDefaultKeepsThem) {
  Files fs = threeIn(kOld);
  const Config c = load(kSwan, fs);
  EXPECT_EQ(c.racoon.certificateDir, kOld);
  EXPECT_EQ(certificatePath(c, c.racoon.caCert), kOld + "/cacert.pem");
  EXPECT_EQ(certificatePath(c, c.racoon.hostKey), kOld + "/host-key.pem");
  // One warning: what was done, why, and the key that makes it explicit.
  EXPECT_THAT(c.warnings,
              ElementsAre(AllOf(HasSubstr("racoon.certificate_dir: not set"), HasSubstr(kNew + " (its default"),
                                HasSubstr("holds cacert.pem, host-cert.pem, host-key.pem"),
                                HasSubstr("reading them from " + kOld),
                                HasSubstr("set 'racoon.certificate_dir: " + kOld + "'"),
                                HasSubstr("or move them to " + kNew + " and reload"))));
  // One of the files is enough (e.g. the key, with the certificates not there yet).
  Files keyOnly{{kOld + "/host-key.pem"}, {}};
  const Config k = load(kSwan, keyOnly);
  EXPECT_EQ(k.racoon.certificateDir, kOld);
  EXPECT_THAT(k.warnings, ElementsAre(HasSubstr("holds host-key.pem:")));
  // The CRL counts as one of the files.
  Files crlOnly{{kOld + "/crl.pem"}, {}};
  EXPECT_EQ(load(kSwan + "racoon:\n  crl: crl.pem\n", crlOnly).racoon.certificateDir, kOld);
}

TEST(ConfigCertificateDir, TheNewDirectoryWinsOnceItHoldsAnyOfTheFiles) {
  // Moved (or half moved): the new directory is read, no warning, whatever the old one holds.
  for (const char* file : {"cacert.pem", "host-cert.pem", "host-key.pem"}) {
    Files fs = threeIn(kOld);
    fs.files.insert(kNew + "/" + file);
    const Config c = load(kSwan, fs);
    EXPECT_EQ(c.racoon.certificateDir, kNew) << file;
    EXPECT_THAT(c.warnings, IsEmpty()) << file;
  }
}

TEST(ConfigCertificateDir, ANewInstallReadsTheNewDirectory) {
  // Neither directory holds anything: the new default, whose missing files the checks name.
  Files none;
  const Config c = load(kSwan, none);
  EXPECT_EQ(c.racoon.certificateDir, kNew);
  EXPECT_THAT(c.warnings, IsEmpty());
  EXPECT_EQ(none.asked, (std::set<std::string>{kNew + "/cacert.pem", kNew + "/host-cert.pem", kNew + "/host-key.pem",
                                               kOld + "/cacert.pem", kOld + "/host-cert.pem", kOld + "/host-key.pem"}));
}

TEST(ConfigCertificateDir, RacoonAlwaysReadsItsOwnDirectory) {
  // racoon reads /etc/racoon/certs itself; the rule is only for the strongSwan backend.
  Files fs = threeIn(kNew);
  const Config c = load("ike:\n  backend: racoon\n", fs);
  EXPECT_EQ(c.racoon.certificateDir, kOld);
  EXPECT_THAT(c.warnings, IsEmpty());
  EXPECT_THAT(fs.asked, IsEmpty());
}

TEST(ConfigCertificateDir, AbsoluteFileNamesDoNotDependOnTheDirectory) {
  // All three absolute: nothing to look for, nothing redirected.
  Files fs = threeIn(kOld);
  const Config all = load(kSwan + "racoon:\n  ca_cert: /srv/ca.pem\n  host_cert: /srv/c.pem\n  host_key: /srv/k.pem\n", fs);
  EXPECT_EQ(all.racoon.certificateDir, kNew);
  EXPECT_THAT(fs.asked, IsEmpty());
  // Only the relative ones are looked for: the key given by file name is in the old directory.
  Files keyOld{{kOld + "/host-key.pem", "/srv/ca.pem", "/srv/c.pem"}, {}};
  const Config some = load(kSwan + "racoon:\n  ca_cert: /srv/ca.pem\n  host_cert: /srv/c.pem\n", keyOld);
  EXPECT_EQ(some.racoon.certificateDir, kOld);
  EXPECT_EQ(some.racoon.caCert, "/srv/ca.pem");
  EXPECT_THAT(some.warnings, ElementsAre(HasSubstr("holds host-key.pem:")));
}

TEST(ConfigCertificateDir, TheExampleLeavesTheDirectoryToTheBackend) {
  // config/ipop-ipsecd.yaml must not pin the directory: switching its backend alone gives
  // strongSwan's default, and the text says where each backend reads them.
  std::ifstream in(IPOPSEC_SOURCE_DIR "/config/ipop-ipsecd.yaml");
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  auto pos = text.find("  backend: racoon\n");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_EQ(parseConfig(text, "t.yaml").racoon.certificateDir, kOld);
  text.replace(pos, 17, "  backend: strongswan");
  const Config c = parseConfig(text, "t.yaml");
  EXPECT_EQ(c.racoon.certificateDir, kNew);
  EXPECT_TRUE(c.racoon.certificateDirDefaulted);
  EXPECT_THAT(s.str(), AllOf(HasSubstr(kOld + " with racoon"), HasSubstr(kNew + " with strongswan")));
}

}  // namespace
}  // namespace ipopsec
