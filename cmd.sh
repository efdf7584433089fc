# How parallel jobs run. run.pl runs them on this machine; on a Slurm cluster comment the run.pl
# lines and use the slurm.pl ones (queue options live in conf/slurm.conf).
export train_cmd="run.pl"
export cuda_cmd="run.pl"
# export train_cmd="slurm.pl --config conf/slurm.conf --mem 4G"
# export cuda_cmd="slurm.pl --config conf/slurm.conf --mem 16G --gpu 1"
