#!/usr/bin/perl
# A tiny TCP/UDP echo for the UML mesh test (no socat/nc in the minimal Debian set).
#   echo.pl tcp-server ADDR PORT    answer one line per connection with "echo:LINE"
#   echo.pl udp-server ADDR PORT    answer each datagram with "echo:DATAGRAM"
#   echo.pl tcp-client ADDR PORT TEXT   prints the answer; exit 1 without one in 5 s
#   echo.pl udp-client ADDR PORT TEXT   same over UDP (3 tries, 2 s each)
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;

my ($mode, $addr, $port, $text) = @ARGV;
die "usage: echo.pl MODE ADDR PORT [TEXT]\n" unless defined $port;
$| = 1;
if ($mode eq 'tcp-server') {
  my $s = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Proto => 'tcp', Listen => 16, ReuseAddr => 1)
    or die "listen: $!\n";
  print "listening\n";
  while (my $c = $s->accept) {
    my $line = <$c>;
    if (defined $line) { chomp $line; print $c "echo:$line\n"; }
    close $c;
  }
} elsif ($mode eq 'udp-server') {
  my $s = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Proto => 'udp') or die "bind: $!\n";
  print "listening\n";
  while (1) {
    my $buf;
    my $peer = $s->recv($buf, 2048);
    next unless defined $peer;
    $s->send("echo:$buf", 0, $peer);
  }
} elsif ($mode eq 'tcp-client') {
  my $c = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'tcp', Timeout => 5) or exit 1;
  print $c "$text\n";
  my $sel = IO::Select->new($c);
  exit 1 unless $sel->can_read(5);
  my $line = <$c>;
  exit 1 unless defined $line;
  print $line;
  exit($line eq "echo:$text\n" ? 0 : 1);
} elsif ($mode eq 'udp-client') {
  my $c = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'udp') or exit 1;
  my $sel = IO::Select->new($c);
  for (1 .. 3) {
    $c->send($text);
    next unless $sel->can_read(2);
    my $buf;
    $c->recv($buf, 2048);
    print "$buf\n";
    exit($buf eq "echo:$text" ? 0 : 1);
  }
  exit 1;
} else {
  die "unknown mode $mode\n";
}
