//! A thread that writes what the reading thread hands it, one item at a time.
//!
//! Why: ingest reads, checks and sorts on one thread, and the generator makes its rows on one;
//! encoding them as Parquet (spilled runs, shard files, the generator's tables) cost about as
//! much again (`benches/results/ingest.md`). Handing each finished piece to a writer thread
//! keeps both cores busy. The channel holds at most one item, so at most
//! three are in memory at once (one being filled, one waiting, one being written).
//!
//! Errors come back when the writer is joined ([`WriterThread::finish`]); a send to a writer
//! that already failed joins it and returns its error. A writer dropped unfinished (an error
//! path elsewhere) is still joined, so nothing is being written while the caller cleans up.

use crate::error::{AscqrError, Result};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// A writer thread taking items of type `T` and giving back an `R` once finished.
pub struct WriterThread<T: Send + 'static, R: Send + 'static> {
    name: &'static str,
    running: Option<(SyncSender<T>, JoinHandle<Result<R>>)>,
}

impl<T: Send + 'static, R: Send + 'static> WriterThread<T, R> {
    /// Starts `work` on its own thread; it receives every item sent, in order, until
    /// [`finish`](Self::finish) closes the channel.
    pub fn spawn(name: &'static str, work: impl FnOnce(Receiver<T>) -> Result<R> + Send + 'static) -> Result<Self> {
        let (items, received) = sync_channel::<T>(1);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || work(received))
            .map_err(|e| AscqrError::Other(format!("starting the {name} thread: {e}")))?;
        Ok(WriterThread { name, running: Some((items, handle)) })
    }

    /// Hands `item` to the writer, waiting while it still holds the previous one.
    pub fn send(&mut self, item: T) -> Result<()> {
        let sent = match &self.running {
            Some((items, _)) => items.send(item).is_ok(),
            None => return Err(AscqrError::Other(format!("internal: an item sent to the finished {} thread", self.name))),
        };
        if sent {
            return Ok(());
        }
        // The writer stopped early: it failed, and joining it gives the reason.
        self.join()?;
        Err(AscqrError::Other(format!("internal: the {} thread stopped early", self.name)))
    }

    /// Closes the channel and waits for the writer: what it returns, or its error.
    pub fn finish(mut self) -> Result<R> {
        self.join()
    }

    fn join(&mut self) -> Result<R> {
        let (items, handle) = self.running.take().ok_or_else(|| AscqrError::Other(format!("internal: the {} thread was already joined", self.name)))?;
        drop(items);
        handle.join().map_err(|_| AscqrError::Other(format!("internal: the {} thread panicked", self.name)))?
    }
}

impl<T: Send + 'static, R: Send + 'static> Drop for WriterThread<T, R> {
    fn drop(&mut self) {
        if self.running.is_some() {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_and_the_result_comes_back() {
        let mut writer = WriterThread::spawn("test writer", |items| Ok(items.into_iter().collect::<Vec<u32>>())).unwrap();
        for i in 0..100 {
            writer.send(i).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_writer_reports_its_own_error() {
        let mut writer = WriterThread::spawn("test writer", |items: Receiver<u32>| {
            for i in items {
                if i == 3 {
                    return Err(AscqrError::Other("disk full at item 3".into()));
                }
            }
            Ok(())
        })
        .unwrap();
        let mut error = None;
        for i in 0..100 {
            if let Err(e) = writer.send(i) {
                error = Some(e);
                break;
            }
        }
        let message = match error {
            Some(e) => e.to_string(),
            None => writer.finish().unwrap_err().to_string(),
        };
        assert!(message.contains("disk full at item 3"), "{message}");
    }
}
