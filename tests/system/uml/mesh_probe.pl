#!/usr/bin/perl
# The mesh benchmark's observer on one node (tests/system/uml/mesh_guest.sh): from the
# moment it is told to go, it sends a UDP datagram to port 5002 (echo.pl udp-server) of each
# peer that has not answered yet, every 100 ms, and records when the first answer from each
# peer arrived (wall clock of the guest, the same clock the guest script reads).
#   mesh_probe.pl OUT_FILE READY_FILE TIMEOUT_SECONDS PEER_ADDRESS...
# Writes its PID to READY_FILE once it waits (the handler is in place), starts on SIGUSR1,
# and writes one line per peer to OUT_FILE: "ADDRESS EPOCH_SECONDS" of the first answer, or
# "ADDRESS none" when none came within TIMEOUT_SECONDS; then exits.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Socket qw(pack_sockaddr_in unpack_sockaddr_in inet_aton inet_ntoa);
use Time::HiRes qw(time);
use POSIX qw(SIGUSR1 SIG_BLOCK sigprocmask sigsuspend);

my ($out, $ready, $timeout, @peers) = @ARGV;
die "usage: mesh_probe.pl OUT READY TIMEOUT PEER...\n" unless @peers;
my $go = 0;
$SIG{USR1} = sub { $go = 1 };
sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR1));   # until sigsuspend: no lost signal
my $s = IO::Socket::INET->new(Proto => 'udp') or die "socket: $!\n";
open(my $r, '>', "$ready.tmp") or die "$ready: $!\n";
print $r "$$\n";
close $r;
rename("$ready.tmp", $ready) or die "$ready: $!\n";
sigsuspend(POSIX::SigSet->new) until $go;

my %dest = map { $_ => pack_sockaddr_in(5002, inet_aton($_)) } @peers;
my %pending = map { $_ => 1 } @peers;
my %first;
my $deadline = time + $timeout;
my $sel = IO::Select->new($s);
my $next = 0;
while (%pending && time < $deadline) {
  if (time >= $next) {
    $s->send("probe", 0, $dest{$_}) for keys %pending;   # errors (no SA yet) are expected
    $next = time + 0.1;
  }
  my $wait = $next - time;
  next unless $wait > 0 && $sel->can_read($wait);
  my $buf;
  my $from = $s->recv($buf, 2048) or next;
  my (undef, $ip) = unpack_sockaddr_in($from);
  my $a = inet_ntoa($ip);
  next unless $pending{$a} && $buf eq "echo:probe";
  $first{$a} = time;
  delete $pending{$a};
}
open(my $o, '>', "$out.tmp") or die "$out: $!\n";
printf $o "%s %s\n", $_, (defined $first{$_} ? sprintf('%.3f', $first{$_}) : 'none') for @peers;
close $o;
rename("$out.tmp", $out) or die "$out: $!\n";
