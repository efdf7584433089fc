#!/usr/bin/env perl
# filter_scp.pl [--exclude] [-f N] <id-list> [<in-file>] > out
# Prints the lines of <in-file> (or stdin) whose N-th field (default 1) is (with --exclude: is
# not) the first field of a line of <id-list>. Input order is kept. N may be negative
# (-1: last field).
use strict;
use warnings;
my ($exclude, $field) = (0, 1);
while (@ARGV && $ARGV[0] =~ m/^-/) {
  my $opt = shift @ARGV;
  if ($opt eq '--exclude') { $exclude = 1; }
  elsif ($opt eq '-f') { $field = shift @ARGV; }
  elsif ($opt =~ m/^-f(-?\d+)$/) { $field = $1; }
  else { die "filter_scp.pl: unknown option $opt\n"; }
}
die "usage: filter_scp.pl [--exclude] [-f N] <id-list> [<in-file>]\n"
  unless @ARGV >= 1 && @ARGV <= 2 && defined $field && $field =~ m/^-?[1-9]\d*$/;
my $list = shift @ARGV;
open(my $fh, '<', $list) or die "filter_scp.pl: cannot open id list $list: $!\n";
my %ids;
while (<$fh>) { my @f = split; $ids{ $f[0] } = 1 if @f; }
close($fh);
my $index = $field > 0 ? $field - 1 : $field;
while (my $line = <>) {
  my @f = split(' ', $line);
  next unless @f;
  my $key = $f[$index];
  die "filter_scp.pl: line $. has no field $field: $line" unless defined $key;
  print $line if (exists $ids{$key} ? 1 : 0) != $exclude;
}
