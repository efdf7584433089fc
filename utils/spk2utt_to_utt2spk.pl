#!/usr/bin/env perl
# spk2utt_to_utt2spk.pl [spk2utt] > utt2spk
# One "utt spk" line per utterance, in input order (pipe through LC_ALL=C sort if needed).
use strict;
use warnings;
while (my $line = <>) {
  my @f = split(' ', $line);
  next unless @f;
  die "spk2utt_to_utt2spk.pl: $ARGV:$.: speaker $f[0] has no utterances\n" unless @f >= 2;
  my $spk = shift @f;
  print "$_ $spk\n" for @f;
}
