#!/usr/bin/env perl
# utt2spk_to_spk2utt.pl [utt2spk] > spk2utt
# Speakers in order of first appearance, each with its utterances in input order (a C-sorted
# utt2spk whose speaker ids prefix the utterance ids gives a C-sorted spk2utt).
use strict;
use warnings;
my (%utts, @order);
while (my $line = <>) {
  my @f = split(' ', $line);
  next unless @f;
  die "utt2spk_to_spk2utt.pl: $ARGV:$.: expected 'utt spk', got: $line" unless @f == 2;
  my ($utt, $spk) = @f;
  push @order, $spk unless exists $utts{$spk};
  push @{ $utts{$spk} }, $utt;
}
print "$_ @{ $utts{$_} }\n" for @order;
