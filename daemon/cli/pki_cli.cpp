#include "daemon/cli/pki_cli.hpp"

#include <utility>

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "daemon/cli/cli_common.hpp"
#include "pki/crl.hpp"
#include "pki/pki.hpp"

namespace po = boost::program_options;

namespace ipopsec {
namespace {

// `ipop-ipsecd pki --help`: all six subcommands (init-ca, issue, request, sign, revoke, crl).
// `pki init-ca --help`, `pki issue --help` and the others print their own usage only.
const char* kInitCaUsage =
    "usage: ipop-ipsecd pki init-ca --dir DIR --name \"GroupVPN CA\" [--days N] [--key rsa|ec] [--force]\n"
    "           a CA for the GroupVPN: DIR/cacert.pem and DIR/ca-key.pem (0600); keep DIR off the nodes\n";
const char* kIssueUsage =
    "usage: ipop-ipsecd pki issue --ca-dir DIR --ip ADDRESS [--dns NAME] [--days N] [--key rsa|ec]\n"
    "                             --out DIR [--force]\n"
    "           a node's certificate for its VPN address: host-cert.pem, host-key.pem (0600) and\n"
    "           cacert.pem in --out; copy them to racoon.certificate_dir (/etc/racoon/certs with racoon,\n"
    "           /etc/ipop-ipsec/certs with strongswan)\n";
const char* kRequestUsage =
    "usage: ipop-ipsecd pki request --ip ADDRESS [--dns NAME] [--key rsa|ec] --out DIR [--force]\n"
    "           on the node: its private key host-key.pem (0600), which never leaves the node, and\n"
    "           a certificate request host.csr in --out; send host.csr to the CA ('pki sign')\n";
const char* kSignUsage =
    "usage: ipop-ipsecd pki sign --ca-dir DIR --csr FILE [--days N] [--backend racoon|strongswan]\n"
    "                            --out DIR [--force]\n"
    "           on the CA: checks a node's request (signature, subjectAltName, key strength) and\n"
    "           issues its certificate as 'pki issue' does: host-cert.pem and cacert.pem in --out\n";
const char* kRevokeUsage =
    "usage: ipop-ipsecd pki revoke --ca-dir DIR (--cert FILE | --serial HEX) [--reason REASON]\n"
    "           on the CA: records the revocation of a node's certificate in DIR/revoked.txt;\n"
    "           'pki crl' publishes it\n";
const char* kCrlUsage =
    "usage: ipop-ipsecd pki crl --ca-dir DIR --out FILE [--days N]\n"
    "           on the CA: the signed revocation list of every revoked certificate, valid N days\n"
    "           (default 30); copy it to every node (racoon.crl) before it is out of date\n";
const char* kKeyNote =
    "Keys are RSA 3072 by default: racoon signs with RSA only. EC (P-256) keys suit the strongswan backend.\n";
const std::string kPkiUsage = std::string(kInitCaUsage) + "      " + (kIssueUsage + 6) + "      " +
                              (kRequestUsage + 6) + "      " + (kSignUsage + 6) + "      " + (kRevokeUsage + 6) +
                              "      " + (kCrlUsage + 6) + kKeyNote +
                              "'ipop-ipsecd pki SUBCOMMAND --help' (init-ca, issue, request, sign, revoke, crl): its "
                              "options.\n";

// Every error line has this one form, on stderr (as in cli.cpp).
std::ostream& error() { return std::cerr << "error: "; }

KeyKind keyKind(const std::string& s) {
  if (s == "rsa") return KeyKind::rsa;
  if (s == "ec") return KeyKind::ec;
  throw po::error("--key must be rsa or ec, got '" + s + "'");
}

void printWritten(const std::vector<std::string>& files) {
  for (const auto& f : files)
    std::cout << "wrote " << f << (f.size() > 7 && f.compare(f.size() - 7, 7, "key.pem") == 0 ? " (mode 0600)" : "")
              << "\n";
}

}  // namespace

int runPkiCli(int argc, char** argv) {
  if (argc < 1) {
    error() << "ipop-ipsecd pki: a subcommand is required: init-ca, issue, request, sign, revoke or crl "
               "('ipop-ipsecd pki --help')\n";
    return kExitUsage;
  }
  std::string sub = argv[0];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << kPkiUsage;
    return kExitOk;
  }
  po::options_description opts("pki options");
  if (sub == "init-ca") {
    opts.add_options()("dir", po::value<std::string>()->required(), "the CA directory")(
        "name", po::value<std::string>()->default_value("GroupVPN CA"), "the CA's name (CN)")(
        "days", po::value<int>()->default_value(3650), "validity in days")(
        "key", po::value<std::string>()->default_value("rsa"), "rsa (3072 bits) or ec (P-256)")(
        "force", "replace an existing CA")("help,h", "show help");
  } else if (sub == "issue") {
    opts.add_options()("ca-dir", po::value<std::string>()->required(), "the CA directory (pki init-ca)")(
        "ip", po::value<std::vector<std::string>>()->composing(), "the node's VPN address (subjectAltName IP)")(
        "dns", po::value<std::vector<std::string>>()->composing(), "a DNS name (subjectAltName DNS)")(
        "days", po::value<int>()->default_value(365), "validity in days")(
        "key", po::value<std::string>()->default_value("rsa"), "rsa (3072 bits) or ec (P-256)")(
        "out", po::value<std::string>()->required(), "where to write host-cert.pem, host-key.pem, cacert.pem")(
        "force", "replace existing files in --out")("help,h", "show help");
  } else if (sub == "request") {
    opts.add_options()(
        "ip", po::value<std::vector<std::string>>()->composing(), "the node's VPN address (subjectAltName IP)")(
        "dns", po::value<std::vector<std::string>>()->composing(), "a DNS name (subjectAltName DNS)")(
        "key", po::value<std::string>()->default_value("rsa"), "rsa (3072 bits) or ec (P-256)")(
        "out", po::value<std::string>()->required(), "where to write host-key.pem and host.csr")(
        "force", "replace existing files in --out")("help,h", "show help");
  } else if (sub == "sign") {
    opts.add_options()("ca-dir", po::value<std::string>()->required(), "the CA directory (pki init-ca)")(
        "csr", po::value<std::string>()->required(), "the node's request (host.csr from pki request)")(
        "days", po::value<int>()->default_value(365), "validity in days")(
        "backend", po::value<std::string>(), "racoon (RSA keys only) or strongswan")(
        "out", po::value<std::string>()->required(), "where to write host-cert.pem and cacert.pem")(
        "force", "replace an existing host-cert.pem in --out")("help,h", "show help");
  } else if (sub == "revoke") {
    std::string reasons;
    for (const auto& r : revocationReasons()) reasons += (reasons.empty() ? "" : ", ") + r;
    opts.add_options()("ca-dir", po::value<std::string>()->required(), "the CA directory (pki init-ca)")(
        "cert", po::value<std::string>(), "the certificate to revoke (a node's host-cert.pem)")(
        "serial", po::value<std::string>(), "or its serial number, in hex")(
        "reason", po::value<std::string>()->default_value("unspecified"), reasons.c_str())("help,h", "show help");
  } else if (sub == "crl") {
    opts.add_options()("ca-dir", po::value<std::string>()->required(), "the CA directory (pki init-ca)")(
        "out", po::value<std::string>()->required(), "the CRL file to write")(
        "days", po::value<int>()->default_value(30), "until its nextUpdate, in days")("help,h", "show help");
  } else {
    error() << "ipop-ipsecd pki: unknown subcommand '" << sub << "' ('ipop-ipsecd pki --help' lists them)\n";
    return kExitUsage;
  }
  po::variables_map vm;
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    if (vm.count("help")) {
      std::cout << (sub == "init-ca" ? kInitCaUsage
                    : sub == "issue" ? kIssueUsage
                    : sub == "request" ? kRequestUsage
                    : sub == "revoke" ? kRevokeUsage
                    : sub == "crl" ? kCrlUsage
                                       : kSignUsage)
                << (sub == "revoke" || sub == "crl" ? "" : kKeyNote) << "\n"
                << opts;
      return kExitOk;
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    error() << "ipop-ipsecd pki " << sub << ": " << e.what() << " ('ipop-ipsecd pki " << sub
            << " --help' lists the options)\n";
    return kExitUsage;
  }
  try {
    if (sub == "init-ca") {
      CaRequest req;
      req.dir = vm["dir"].as<std::string>();
      req.name = vm["name"].as<std::string>();
      req.days = vm["days"].as<int>();
      req.key = keyKind(vm["key"].as<std::string>());
      req.force = vm.count("force") > 0;
      printWritten(initCa(req));
      std::cout << "next: ipop-ipsecd pki issue --ca-dir " << req.dir << " --ip <node's VPN address> --out <dir>\n"
                << "keep " << req.dir << "/ca-key.pem secret and off the VPN nodes\n";
      if (req.key == KeyKind::ec)
        std::cout << "note: an EC CA can only sign for the strongswan backend's peers; racoon needs RSA\n";
    } else if (sub == "request") {
      NodeRequest req;
      if (vm.count("ip")) req.ips = vm["ip"].as<std::vector<std::string>>();
      if (vm.count("dns")) req.dns = vm["dns"].as<std::vector<std::string>>();
      req.key = keyKind(vm["key"].as<std::string>());
      req.outDir = vm["out"].as<std::string>();
      req.force = vm.count("force") > 0;
      printWritten(makeRequest(req));
      std::cout << "next: send " << req.outDir << "/host.csr (only that file) to the CA, which runs\n"
                << "      ipop-ipsecd pki sign --ca-dir <CA dir> --csr host.csr --out <dir>\n"
                << "      and sends back host-cert.pem and cacert.pem; keep host-key.pem on this node\n";
      if (req.key == KeyKind::ec) std::cout << "note: racoon signs with RSA only; an EC key suits the strongswan backend\n";
    } else if (sub == "revoke") {
      RevokeRequest req;
      req.caDir = vm["ca-dir"].as<std::string>();
      if (vm.count("cert")) req.certPath = vm["cert"].as<std::string>();
      if (vm.count("serial")) req.serial = vm["serial"].as<std::string>();
      req.reason = vm["reason"].as<std::string>();
      Revocation r = revokeCertificate(req);
      std::cout << "revoked serial " << r.serial << " (" << r.reason << ") in " << req.caDir << "/revoked.txt\n"
                << "next: ipop-ipsecd pki crl --ca-dir " << req.caDir << " --out crl.pem, and copy crl.pem to every "
                << "node (racoon.crl)\n";
    } else if (sub == "crl") {
      CrlRequest req;
      req.caDir = vm["ca-dir"].as<std::string>();
      req.outPath = vm["out"].as<std::string>();
      req.days = vm["days"].as<int>();
      CrlResult r = makeCrl(req);
      std::cout << "wrote " << req.outPath << ": CRL number " << r.number << ", " << r.entries << " revoked "
                << (r.entries == 1 ? "certificate" : "certificates") << ", next update " << formatUtc(r.nextUpdate)
                << "\nnext: copy it to every node's racoon.certificate_dir and set racoon.crl to its name; make a "
                   "new one before the next update\n";
    } else if (sub == "sign") {
      SignRequest req;
      req.caDir = vm["ca-dir"].as<std::string>();
      req.csrPath = vm["csr"].as<std::string>();
      req.days = vm["days"].as<int>();
      req.outDir = vm["out"].as<std::string>();
      req.force = vm.count("force") > 0;
      if (vm.count("backend")) {
        const auto& b = vm["backend"].as<std::string>();
        if (b != "racoon" && b != "strongswan") throw po::error("--backend must be racoon or strongswan, got '" + b + "'");
        req.rsaOnly = b == "racoon";
      }
      SignResult r = signRequest(req);
      std::string names;
      for (const auto& ip : r.ips) names += (names.empty() ? "" : ", ") + std::string("IP:") + ip;
      for (const auto& d : r.dns) names += (names.empty() ? "" : ", ") + std::string("DNS:") + d;
      std::cout << "certified " << names << " (" << r.key << ") from " << req.csrPath << "\n";
      printWritten(r.files);
      std::cout << "next: send host-cert.pem and cacert.pem back to the node; with host-key.pem they go in its\n"
                << "      racoon.certificate_dir (default /etc/racoon/certs with racoon, /etc/ipop-ipsec/certs with\n"
                << "      strongswan); then run 'ipop-ipsecd check' there\n";
      if (r.key.rfind("EC", 0) == 0)
        std::cout << "note: racoon signs with RSA only; an EC key suits the strongswan backend\n";
    } else {
      HostRequest req;
      req.caDir = vm["ca-dir"].as<std::string>();
      if (vm.count("ip")) req.ips = vm["ip"].as<std::vector<std::string>>();
      if (vm.count("dns")) req.dns = vm["dns"].as<std::vector<std::string>>();
      req.days = vm["days"].as<int>();
      req.key = keyKind(vm["key"].as<std::string>());
      req.outDir = vm["out"].as<std::string>();
      req.force = vm.count("force") > 0;
      printWritten(issueHost(req));
      std::cout << "next: install the three files in the node's racoon.certificate_dir (default /etc/racoon/certs\n"
                << "      with racoon, /etc/ipop-ipsec/certs with strongswan; host-key.pem owned by root, mode 0600)\n"
                << "      and run 'ipop-ipsecd check'\n";
      if (req.key == KeyKind::ec) std::cout << "note: racoon signs with RSA only; an EC key suits the strongswan backend\n";
    }
  } catch (const po::error& e) {
    error() << "ipop-ipsecd pki " << sub << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const PkiError& e) {
    error() << "ipop-ipsecd pki " << sub << ": " << e.what() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace ipopsec
